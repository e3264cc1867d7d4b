"""Generated protobuf/gRPC code; see protos/."""
