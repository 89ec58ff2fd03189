/** Product version, shared by agent and server (bumped with releases). */
export const COFFRE_VERSION = '0.1.0';
