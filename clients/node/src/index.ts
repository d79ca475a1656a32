// @edupulse/pulsebus: the Node.js client of pulsebus.
export { connect, Client, jsonEvent, eduPulseEvent, type ConnectOptions, type EventInput, type EventMeta, type PublishResult, type CallOptions, type Pem } from "./client.js";
export { Publisher, type PublisherOptions } from "./publisher.js";
export { Consumer, duration, DEFAULT_BATCH_RECORDS, type ConsumerOptions, type ConsumerConfigOptions, type ConsumerState, type DeliveryModeName, type Start } from "./consumer.js";
export { Message, type Settlement } from "./message.js";
export { Retry, Fail, RetryResult, FailResult, type Handler, type RunOptions } from "./run.js";
export { PulsebusError, codeName, isRetryable } from "./errors.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export { pack, unpack, typeUrl, timestamp, kindOf, type EduPulseKind, type EduPulseInputs, type EduPulseOutputs } from "./edupulse.js";
export { status } from "@grpc/grpc-js";
