"""`sagemaker_containers._encoders` (`beta.framework.encoders`)."""

from sagelab.containers.shims.codecs import (
    UnsupportedFormatError,
    array_to_csv,
    array_to_json,
    array_to_npy,
    csv_to_numpy,
    decode,
    encode,
    json_to_numpy,
    npy_to_numpy,
)

__all__ = ["UnsupportedFormatError", "array_to_csv", "array_to_json", "array_to_npy", "csv_to_numpy", "decode", "encode",
           "json_to_numpy", "npy_to_numpy"]  # fmt: skip
