"""TF Serving's gRPC API over a ModelStore: PredictionService (Predict, GetModelMetadata) and
ModelService (GetModelStatus), with the official tensorflow-serving-api protos."""
from __future__ import annotations

from concurrent import futures

import grpc
import numpy as np
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.errors import invalid, not_found
from serving.model_store import ModelStore
from serving.request_log import RequestRecord
from serving.tensors import to_ndarray, to_tensor_proto

_STATE = get_model_status_pb2.ModelVersionStatus.State


def requested_version(model_spec) -> int | None:
    which = model_spec.WhichOneof("version_choice")
    if which == "version_label":
        raise not_found(f"version label {model_spec.version_label!r} is not configured on this server")
    return model_spec.version.value if which == "version" else None


def input_array(name: str, proto) -> np.ndarray:
    try:
        return to_ndarray(proto)
    except Exception as e:
        raise invalid(f"input {name!r} is not a valid TensorProto: {e}") from None


def fill_signature_def_metadata(response, servable) -> None:
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    for k, v in servable.signature_defs.items():
        sig_map.signature_def[k].CopyFrom(v)
    response.metadata["signature_def"].Pack(sig_map)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, store: ModelStore):
        self.store = store

    def Predict(self, request, context):
        with RequestRecord("grpc", "Predict", request.model_spec.name) as rec:
            servable = self.store.get(request.model_spec.name, requested_version(request.model_spec))
            rec.served(servable.version)
            key = servable.signature_key(request.model_spec.signature_name)
            rec.served(servable.version, key)
            inputs = {k: input_array(k, v) for k, v in request.inputs.items()}
            outputs = servable.predict(key, inputs)
            wanted = list(request.output_filter) or list(outputs)
            unknown = sorted(set(wanted) - set(outputs))
            if unknown:
                raise invalid(f"output_filter names unknown outputs {unknown}; outputs: {sorted(outputs)}")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = key
            for k in wanted:
                response.outputs[k].CopyFrom(to_tensor_proto(outputs[k]))
            return response
        context.abort(rec.error.code, rec.error.message)

    def GetModelMetadata(self, request, context):
        with RequestRecord("grpc", "GetModelMetadata", request.model_spec.name) as rec:
            fields = set(request.metadata_field)
            if fields != {"signature_def"}:
                raise invalid(f"metadata_field must be ['signature_def'] (the only one TF Serving supports), "
                              f"got {sorted(fields)}")
            servable = self.store.get(request.model_spec.name, requested_version(request.model_spec))
            rec.served(servable.version)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            fill_signature_def_metadata(response, servable)
            return response
        context.abort(rec.error.code, rec.error.message)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, store: ModelStore):
        self.store = store

    def GetModelStatus(self, request, context):
        with RequestRecord("grpc", "GetModelStatus", request.model_spec.name) as rec:
            version = requested_version(request.model_spec)
            response = get_model_status_pb2.GetModelStatusResponse()
            statuses = self.store.status(request.model_spec.name, version)
            rec.served(version if version is not None else "-")
            for s in statuses:
                st = response.model_version_status.add()
                st.version = s.version
                st.state = _STATE.Value(s.state)
                st.status.error_code = 2 if s.error else 0  # tensorflow.error.Code UNKNOWN / OK
                st.status.error_message = s.error
            return response
        context.abort(rec.error.code, rec.error.message)


def build_grpc_server(store: ModelStore, address: str, threads: int, max_message_bytes: int):
    """(a gRPC server, not started, serving both services; the port it bound) for `address` (host:port,
    port 0: a free one)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", max_message_bytes),
                 ("grpc.max_send_message_length", max_message_bytes),
                 ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(store), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(store), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind the gRPC port at {address}")
    return server, port
