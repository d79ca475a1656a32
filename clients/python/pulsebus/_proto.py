"""The generated protobuf and gRPC modules (built from proto/ when the package is built)."""

from pulsebus._gen.edupulse.events.v1 import events_pb2 as edupulse_pb2
from pulsebus._gen.pulsebus.v1 import pulsebus_pb2 as pb
from pulsebus._gen.pulsebus.v1 import pulsebus_pb2_grpc as pb_grpc

__all__ = ["edupulse_pb2", "pb", "pb_grpc"]
