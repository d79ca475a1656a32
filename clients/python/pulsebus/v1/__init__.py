"""`pulsebus.v1.pulsebus_pb2` and `pulsebus.v1.pulsebus_pb2_grpc`: the import paths that
protoc gives stubs generated from proto/pulsebus/v1/pulsebus.proto, pointing at this
package's generated modules (pulsebus._gen). Code written against plain generated stubs
(`from pulsebus.v1 import pulsebus_pb2`) keeps working with this package installed,
which would otherwise shadow their top-level `pulsebus` package."""

import sys

from pulsebus._gen.pulsebus.v1 import pulsebus_pb2, pulsebus_pb2_grpc

sys.modules[f"{__name__}.pulsebus_pb2"] = pulsebus_pb2
sys.modules[f"{__name__}.pulsebus_pb2_grpc"] = pulsebus_pb2_grpc

__all__ = ["pulsebus_pb2", "pulsebus_pb2_grpc"]
