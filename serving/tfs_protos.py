"""TF Serving's configuration messages that the tensorflow-serving-api wheel does not ship, declared
here field for field (names, numbers and types as in tensorflow_serving/servables/tensorflow/
session_bundle_config.proto and tensorflow_serving/config/monitoring_config.proto), so the files in
serving/deploy/ are parsed by protobuf's own text format, which refuses any field TF Serving would.
"""
from __future__ import annotations

import functools

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

_F = descriptor_pb2.FieldDescriptorProto
# message -> [(field, number, type, message type name or "", repeated)]
_MESSAGES = {
    "BatchingParameters": [
        ("max_batch_size", 1, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
        ("batch_timeout_micros", 2, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
        ("max_enqueued_batches", 3, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
        ("num_batch_threads", 4, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
        ("thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue", False),
        ("allowed_batch_sizes", 6, _F.TYPE_INT64, "", True),
        ("pad_variable_length_inputs", 7, _F.TYPE_BOOL, "", False),
        ("enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, ".google.protobuf.BoolValue", False),
        ("max_execution_batch_size", 9, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value", False),
    ],
    "PrometheusConfig": [
        ("enable", 1, _F.TYPE_BOOL, "", False),
        ("path", 2, _F.TYPE_STRING, "", False),
    ],
    "MonitoringConfig": [
        ("prometheus_config", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig", False),
    ],
}


@functools.cache
def message_class(name: str):
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
    f = descriptor_pb2.FileDescriptorProto(name="gan_restoration/tf_serving_config.proto",
                                           package="tensorflow.serving", syntax="proto3",
                                           dependency=["google/protobuf/wrappers.proto"])
    for message, fields in _MESSAGES.items():
        m = f.message_type.add(name=message)
        for field, number, kind, type_name, repeated in fields:
            m.field.add(name=field, number=number, type=kind, type_name=type_name or None,
                        label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    pool.Add(f)
    return message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))


def parse_text_file(path: str, name: str):
    """A text-format file as the named message (text_format.ParseError on anything TF Serving refuses)."""
    msg = message_class(name)()
    with open(path) as f:
        text_format.Parse(f.read(), msg)
    return msg
