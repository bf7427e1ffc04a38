"""The subset of Waymo's `dataset.proto` (v1 Frame records) that the reader needs, built without protoc.

Messages keep the official package (`waymo.open_dataset`), names, field numbers, types and
proto2 encoding, so they are wire-compatible with the official classes: a Frame written by
`waymo_open_dataset.dataset_pb2` parses here (fields we do not declare, such as lidar, are kept
as unknown fields and written back unchanged), and ours parse there. They live in a private
descriptor pool so that importing the official package next to this module never clashes.

Units (from the official proto comments): `Frame.timestamp_micros` in microseconds;
`Frame.pose.transform` is the 4x4 row-major vehicle-to-world transform in metres;
`CameraCalibration.intrinsic` is [f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3] in pixels;
`CameraCalibration.extrinsic` is camera-to-vehicle, camera axes x forward, y left, z up.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "waymo.open_dataset"

_F = descriptor_pb2.FieldDescriptorProto
_TYPES = {"double": _F.TYPE_DOUBLE, "float": _F.TYPE_FLOAT, "int64": _F.TYPE_INT64, "int32": _F.TYPE_INT32,
          "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES}

# (field name, number, label, type): a type that is not a scalar is a message or, with "enum:", an enum.
_MESSAGES: dict[str, list[tuple[str, int, str, str]]] = {
    "Transform": [("transform", 1, "repeated", "double")],
    "Velocity": [("v_x", 1, "optional", "float"), ("v_y", 2, "optional", "float"),
                 ("v_z", 3, "optional", "float"), ("w_x", 4, "optional", "double"),
                 ("w_y", 5, "optional", "double"), ("w_z", 6, "optional", "double")],
    "CameraName": [],
    "CameraCalibration": [
        ("name", 1, "optional", "enum:CameraName.Name"),
        ("intrinsic", 2, "repeated", "double"),
        ("extrinsic", 3, "optional", "Transform"),
        ("width", 4, "optional", "int32"),
        ("height", 5, "optional", "int32"),
        ("rolling_shutter_direction", 6, "optional", "enum:CameraCalibration.RollingShutterReadOutDirection"),
    ],
    "Context": [("name", 1, "optional", "string"),
                ("camera_calibrations", 2, "repeated", "CameraCalibration")],
    "CameraImage": [
        ("name", 1, "optional", "enum:CameraName.Name"),
        ("image", 2, "optional", "bytes"),
        ("pose", 3, "optional", "Transform"),
        ("velocity", 4, "optional", "Velocity"),
        ("pose_timestamp", 5, "optional", "double"),
        ("shutter", 6, "optional", "double"),
        ("camera_trigger_time", 7, "optional", "double"),
        ("camera_readout_done_time", 8, "optional", "double"),
    ],
    "Frame": [("context", 1, "optional", "Context"),
              ("timestamp_micros", 2, "optional", "int64"),
              ("pose", 3, "optional", "Transform"),
              ("images", 4, "repeated", "CameraImage")],
}

# Nested enums: (message, enum name) -> values.
_ENUMS: dict[tuple[str, str], list[tuple[str, int]]] = {
    ("CameraName", "Name"): [("UNKNOWN", 0), ("FRONT", 1), ("FRONT_LEFT", 2), ("FRONT_RIGHT", 3),
                             ("SIDE_LEFT", 4), ("SIDE_RIGHT", 5), ("REAR_LEFT", 6), ("REAR", 7),
                             ("REAR_RIGHT", 8)],
    ("CameraCalibration", "RollingShutterReadOutDirection"): [
        ("UNKNOWN", 0), ("TOP_TO_BOTTOM", 1), ("LEFT_TO_RIGHT", 2), ("BOTTOM_TO_TOP", 3),
        ("RIGHT_TO_LEFT", 4), ("GLOBAL_SHUTTER", 5)],
}


def _file_proto() -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of the subset, as protoc would have produced it from dataset.proto."""
    fdp = descriptor_pb2.FileDescriptorProto(name="worldmodel/waymo_dataset_subset.proto", package=PACKAGE,
                                             syntax="proto2")
    for message_name, fields in _MESSAGES.items():
        message = fdp.message_type.add(name=message_name)
        for (owner, enum_name), values in _ENUMS.items():
            if owner == message_name:
                enum = message.enum_type.add(name=enum_name)
                for value_name, number in values:
                    enum.value.add(name=value_name, number=number)
        for name, number, label, kind in fields:
            field = message.field.add(name=name, number=number,
                                      label=_F.LABEL_REPEATED if label == "repeated" else _F.LABEL_OPTIONAL)
            if kind in _TYPES:
                field.type = _TYPES[kind]
            elif kind.startswith("enum:"):
                field.type, field.type_name = _F.TYPE_ENUM, f".{PACKAGE}.{kind[5:]}"
            else:
                field.type, field.type_name = _F.TYPE_MESSAGE, f".{PACKAGE}.{kind}"
    return fdp


def _build() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_proto())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in _MESSAGES}


_CLASSES = _build()
Transform = _CLASSES["Transform"]
Velocity = _CLASSES["Velocity"]
CameraName = _CLASSES["CameraName"]
CameraCalibration = _CLASSES["CameraCalibration"]
Context = _CLASSES["Context"]
CameraImage = _CLASSES["CameraImage"]
Frame = _CLASSES["Frame"]

CAMERA_NAME_VALUES: dict[str, int] = dict(_ENUMS[("CameraName", "Name")])
