// Errors the client throws: every failed call becomes a PulsebusError that carries the
// gRPC status code (number and name) and the server's message.
import { status as Status, type ServiceError, type Metadata } from "@grpc/grpc-js";

/** The name of a gRPC status code, e.g. `UNAVAILABLE`. */
export function codeName(code: number): string {
  return (Status as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}

/** A failed pulsebus call. */
export class PulsebusError extends Error {
  /** The gRPC status code (see `status` of @grpc/grpc-js). */
  readonly code: number;
  /** Its name, e.g. `FAILED_PRECONDITION`. */
  readonly codeName: string;
  /** The server's message, e.g. `events[2].id: "abc" is not a UUID`. */
  readonly details: string;
  /** The RPC that failed, e.g. `Publish`. */
  readonly rpc: string;
  /** The trailing metadata of the call (holds `grpc-status-details-bin`). */
  readonly metadata?: Metadata;

  constructor(rpc: string, code: number, details: string, metadata?: Metadata) {
    super(`pulsebus ${rpc} failed: ${codeName(code)}: ${details}`);
    this.name = "PulsebusError";
    this.rpc = rpc;
    this.code = code;
    this.codeName = codeName(code);
    this.details = details;
    this.metadata = metadata;
  }

  /** Wraps an error of @grpc/grpc-js (or passes a PulsebusError through). */
  static from(rpc: string, err: unknown): PulsebusError {
    if (err instanceof PulsebusError) return err;
    const e = err as Partial<ServiceError>;
    if (typeof e?.code === "number") {
      return new PulsebusError(rpc, e.code, e.details ?? e.message ?? "", e.metadata);
    }
    return new PulsebusError(rpc, Status.UNKNOWN, String((err as Error)?.message ?? err));
  }
}

/** Codes after which the same call may succeed when tried again. */
export function isRetryable(code: number): boolean {
  return code === Status.UNAVAILABLE || code === Status.DEADLINE_EXCEEDED;
}

/**
 * Codes after which a subscription tries again (the server went away, restarted or is
 * overloaded); anything else (bad request, mode mismatch, auth) ends the consumer.
 */
export function isTransientForStream(code: number): boolean {
  return (
    code === Status.UNAVAILABLE ||
    code === Status.DEADLINE_EXCEEDED ||
    code === Status.CANCELLED ||
    code === Status.ABORTED ||
    code === Status.INTERNAL ||
    code === Status.UNKNOWN ||
    code === Status.RESOURCE_EXHAUSTED
  );
}
