// Errors the client throws: every failed call becomes a PulsebusError that carries the
// gRPC status code (number and name) and the server's message.
import { status as Status, type ServiceError, type Metadata } from "@grpc/grpc-js";
import protobuf from "protobufjs";

// google.rpc.Status and ErrorInfo, the server's `grpc-status-details-bin`.
const rpc = protobuf.Root.fromJSON(<protobuf.INamespace>{
  nested: {
    google: {
      nested: {
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: "int32", id: 1 },
                message: { type: "string", id: 2 },
                details: { rule: "repeated", type: "Any", id: 3 },
              },
            },
            Any: { fields: { type_url: { type: "string", id: 1 }, value: { type: "bytes", id: 2 } } },
            ErrorInfo: {
              fields: {
                reason: { type: "string", id: 1 },
                domain: { type: "string", id: 2 },
                metadata: { keyType: "string", type: "string", id: 3 } as protobuf.IField,
              },
            },
          },
        },
      },
    },
  },
});

/** The ErrorInfo in a call's `grpc-status-details-bin`, if there is one. */
function errorInfo(metadata?: Metadata): { reason: string; metadata: Record<string, string> } | undefined {
  const bin = metadata?.get("grpc-status-details-bin")[0];
  if (!bin || typeof bin === "string") return undefined;
  try {
    const status = rpc.lookupType("google.rpc.Status").decode(bin) as unknown as { details: { type_url: string; value: Uint8Array }[] };
    const any = status.details.find((d) => d.type_url.endsWith("/google.rpc.ErrorInfo"));
    if (!any) return undefined;
    const info = rpc.lookupType("google.rpc.ErrorInfo").decode(any.value) as unknown as { reason: string; metadata: Record<string, string> };
    return { reason: info.reason, metadata: { ...info.metadata } };
  } catch {
    return undefined;
  }
}

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
  /** The server's stable reason (google.rpc.ErrorInfo), e.g. `MODE_MISMATCH`, `TOPIC_NOT_FOUND`. */
  readonly reason?: string;
  /** The ErrorInfo's metadata (the topic, the consumer...). */
  readonly reasonMetadata?: Record<string, string>;

  constructor(rpc: string, code: number, details: string, metadata?: Metadata) {
    super(`pulsebus ${rpc} failed: ${codeName(code)}: ${details}`);
    this.name = "PulsebusError";
    this.rpc = rpc;
    this.code = code;
    this.codeName = codeName(code);
    this.details = details;
    this.metadata = metadata;
    const info = errorInfo(metadata);
    this.reason = info?.reason;
    this.reasonMetadata = info?.metadata;
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
