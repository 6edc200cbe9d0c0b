"""The gRPC edge: conversions, servicers, error mapping and server assembly. The only place that imports grpc."""
