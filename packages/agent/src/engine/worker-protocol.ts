import type { ChunkId } from '@coffre/core';

/** Messages between the backup engine and its worker threads. */
export interface FileJob {
  readonly path: string | Uint8Array;
  readonly size: number;
}

export type FileResult =
  | {
      readonly ok: true;
      readonly content: [ChunkId, number][];
      readonly size: number;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
      readonly mtime: string;
      readonly ctime: string;
      readonly ino: string;
      readonly dev: string;
      readonly nlink: number;
    }
  | { readonly ok: false; readonly kind: 'unreadable' | 'changed' | 'vanished' | 'special'; readonly message: string };

export type WorkerIn =
  | { readonly type: 'batch'; readonly id: number; readonly files: readonly FileJob[] }
  | { readonly type: 'known'; readonly known: SharedArrayBuffer };

export type WorkerOut =
  | { readonly type: 'blobs'; readonly ids: readonly ChunkId[]; readonly blobs: readonly Uint8Array[]; readonly hashes: Uint8Array }
  | { readonly type: 'done'; readonly id: number; readonly results: FileResult[] };
