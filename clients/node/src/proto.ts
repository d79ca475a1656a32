// The protobuf side: the gRPC service loaded at run time from the .proto files copied
// into the package at build time, with the same options the types in src/generated
// were generated with (int64 as decimal strings, enums as names, defaults, oneofs).
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

import type { ProtoGrpcType } from "./generated/pulsebus.js";

/** Where the package's copy of `proto/` lives (next to dist/). */
export const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "proto");

export const LOADER_OPTIONS: protoLoader.Options = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let service: ProtoGrpcType | undefined;

/** The generated service definitions, loaded once. */
export function pulsebusProto(): ProtoGrpcType {
  if (!service) {
    const definition = protoLoader.loadSync("pulsebus/v1/pulsebus.proto", LOADER_OPTIONS);
    service = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return service;
}

let events: protobuf.Root | undefined;

/** The EduPulse payload messages, for packing into and unpacking from `Any`. */
export function eventsRoot(): protobuf.Root {
  if (!events) {
    events = new protobuf.Root();
    events.resolvePath = (_origin, target) =>
      target.startsWith("google/") ? target : join(PROTO_DIR, target);
    events.loadSync("edupulse/events/v1/events.proto");
    events.resolveAll();
  }
  return events;
}
