/**
 * Browser side of WebAuthn. The server (@simplewebauthn/server) sends options as JSON with
 * base64url strings where the browser API wants ArrayBuffers, and expects the credential back
 * as JSON (RegistrationResponseJSON / AuthenticationResponseJSON). These helpers convert both
 * ways; they use the browser's own parse…FromJSON / toJSON when it has them.
 */

type Json = Record<string, unknown>;

interface CredentialDescriptorJSON {
  readonly id: string;
  readonly type: 'public-key';
  readonly transports?: readonly string[];
}

export interface CreationOptionsJSON {
  readonly challenge: string;
  readonly rp: { readonly id?: string; readonly name: string };
  readonly user: { readonly id: string; readonly name: string; readonly displayName: string };
  readonly pubKeyCredParams: readonly { readonly type: 'public-key'; readonly alg: number }[];
  readonly timeout?: number;
  readonly excludeCredentials?: readonly CredentialDescriptorJSON[];
  readonly authenticatorSelection?: AuthenticatorSelectionCriteria;
  readonly attestation?: AttestationConveyancePreference;
  readonly extensions?: Json;
  readonly hints?: readonly string[];
}

export interface RequestOptionsJSON {
  readonly challenge: string;
  readonly timeout?: number;
  readonly rpId?: string;
  readonly allowCredentials?: readonly CredentialDescriptorJSON[];
  readonly userVerification?: UserVerificationRequirement;
  readonly extensions?: Json;
  readonly hints?: readonly string[];
}

/** Whether this browser can use security keys at all. */
export function webauthnSupported(): boolean {
  return typeof window !== 'undefined' && typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;
}

export function base64urlToBuffer(s: string): ArrayBuffer {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const bin = atob(padded);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

export function bufferToBase64url(buf: ArrayBuffer | ArrayBufferView): string {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]!);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function descriptor(d: CredentialDescriptorJSON): PublicKeyCredentialDescriptor {
  return { id: base64urlToBuffer(d.id), type: d.type, ...(d.transports ? { transports: [...d.transports] as AuthenticatorTransport[] } : {}) };
}

type StaticPKC = typeof PublicKeyCredential & {
  parseCreationOptionsFromJSON?: (o: unknown) => PublicKeyCredentialCreationOptions;
  parseRequestOptionsFromJSON?: (o: unknown) => PublicKeyCredentialRequestOptions;
};

export function creationOptionsFromJSON(o: CreationOptionsJSON): PublicKeyCredentialCreationOptions {
  const native = (PublicKeyCredential as StaticPKC).parseCreationOptionsFromJSON;
  if (native) {
    try {
      return native.call(PublicKeyCredential, o);
    } catch {
      // Fall through to the manual conversion (older option shapes).
    }
  }
  return {
    challenge: base64urlToBuffer(o.challenge),
    rp: { ...o.rp },
    user: { id: base64urlToBuffer(o.user.id), name: o.user.name, displayName: o.user.displayName },
    pubKeyCredParams: o.pubKeyCredParams.map((p) => ({ ...p })),
    ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    ...(o.excludeCredentials ? { excludeCredentials: o.excludeCredentials.map(descriptor) } : {}),
    ...(o.authenticatorSelection ? { authenticatorSelection: o.authenticatorSelection } : {}),
    ...(o.attestation ? { attestation: o.attestation } : {}),
    ...(o.extensions ? { extensions: o.extensions as AuthenticationExtensionsClientInputs } : {}),
  };
}

export function requestOptionsFromJSON(o: RequestOptionsJSON): PublicKeyCredentialRequestOptions {
  const native = (PublicKeyCredential as StaticPKC).parseRequestOptionsFromJSON;
  if (native) {
    try {
      return native.call(PublicKeyCredential, o);
    } catch {
      // Fall through.
    }
  }
  return {
    challenge: base64urlToBuffer(o.challenge),
    ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    ...(o.rpId ? { rpId: o.rpId } : {}),
    ...(o.allowCredentials ? { allowCredentials: o.allowCredentials.map(descriptor) } : {}),
    ...(o.userVerification ? { userVerification: o.userVerification } : {}),
    ...(o.extensions ? { extensions: o.extensions as AuthenticationExtensionsClientInputs } : {}),
  };
}

type WithToJSON = PublicKeyCredential & { toJSON?: () => Json };

/** A registration credential as RegistrationResponseJSON. */
export function registrationToJSON(c: PublicKeyCredential): Json {
  const r = c.response as AuthenticatorAttestationResponse;
  const transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
  const manual: Json = {
    id: c.id,
    rawId: bufferToBase64url(c.rawId),
    type: c.type,
    authenticatorAttachment: c.authenticatorAttachment ?? undefined,
    clientExtensionResults: c.getClientExtensionResults(),
    response: {
      clientDataJSON: bufferToBase64url(r.clientDataJSON),
      attestationObject: bufferToBase64url(r.attestationObject),
      transports,
    },
  };
  const native = (c as WithToJSON).toJSON;
  if (typeof native === 'function') {
    try {
      return native.call(c);
    } catch {
      // Use the manual form.
    }
  }
  return manual;
}

/** An authentication credential as AuthenticationResponseJSON. */
export function authenticationToJSON(c: PublicKeyCredential): Json {
  const native = (c as WithToJSON).toJSON;
  if (typeof native === 'function') {
    try {
      return native.call(c);
    } catch {
      // Use the manual form.
    }
  }
  const r = c.response as AuthenticatorAssertionResponse;
  return {
    id: c.id,
    rawId: bufferToBase64url(c.rawId),
    type: c.type,
    authenticatorAttachment: c.authenticatorAttachment ?? undefined,
    clientExtensionResults: c.getClientExtensionResults(),
    response: {
      clientDataJSON: bufferToBase64url(r.clientDataJSON),
      authenticatorData: bufferToBase64url(r.authenticatorData),
      signature: bufferToBase64url(r.signature),
      ...(r.userHandle ? { userHandle: bufferToBase64url(r.userHandle) } : {}),
    },
  };
}

/** Asks the browser for a new credential (registration); resolves with the JSON to send to the server. */
export async function createCredential(options: CreationOptionsJSON, signal?: AbortSignal): Promise<Json> {
  const c = await navigator.credentials.create({ publicKey: creationOptionsFromJSON(options), ...(signal ? { signal } : {}) });
  if (!c) throw new DOMException('No credential', 'NotAllowedError');
  return registrationToJSON(c as PublicKeyCredential);
}

/** Asks the browser to sign the server's challenge with a registered key; resolves with the JSON to send back. */
export async function getAssertion(options: RequestOptionsJSON, signal?: AbortSignal): Promise<Json> {
  const c = await navigator.credentials.get({ publicKey: requestOptionsFromJSON(options), ...(signal ? { signal } : {}) });
  if (!c) throw new DOMException('No credential', 'NotAllowedError');
  return authenticationToJSON(c as PublicKeyCredential);
}

/**
 * What went wrong in the browser, as a stable kind the pages turn into a message:
 * cancelled/timed out, key already registered, unsupported, or other.
 */
export function webauthnErrorKind(e: unknown): 'cancelled' | 'already-registered' | 'unsupported' | 'security' | 'other' {
  if (!(e instanceof DOMException)) return 'other';
  if (e.name === 'NotAllowedError' || e.name === 'AbortError') return 'cancelled';
  if (e.name === 'InvalidStateError') return 'already-registered';
  if (e.name === 'NotSupportedError') return 'unsupported';
  if (e.name === 'SecurityError') return 'security';
  return 'other';
}
