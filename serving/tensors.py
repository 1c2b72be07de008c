"""numpy <-> TensorProto, with a fast path for string tensors (encoded images), the hot case.

tf.make_tensor_proto / tf.make_ndarray walk string tensors element by element through generic
Python code; for [N] encoded images building the proto directly is several times cheaper.
"""
from __future__ import annotations

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2


def to_tensor_proto(value) -> tensor_pb2.TensorProto:
    arr = np.asarray(value, dtype=object) if isinstance(value, (list, tuple)) else np.asarray(value)
    if arr.dtype.kind in ("O", "S"):
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
        proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in arr.shape]))
        proto.string_val.extend(x if isinstance(x, bytes) else str(x).encode() for x in arr.reshape(-1))
        return proto
    import tensorflow as tf

    return tf.make_tensor_proto(arr)


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
    if proto.dtype == types_pb2.DT_STRING and not proto.tensor_content:
        shape = [d.size for d in proto.tensor_shape.dim]
        flat = np.empty(len(proto.string_val), dtype=object)
        flat[:] = list(proto.string_val)
        if int(np.prod(shape)) != flat.size:
            raise ValueError(f"{flat.size} string values for shape {shape}")
        return flat.reshape(shape)
    import tensorflow as tf

    return tf.make_ndarray(proto)
