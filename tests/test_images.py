"""image_uri() gives the URIs the SageMaker SDK's image_uris.retrieve() gives, offline.

The expected URIs were made by the SDK itself (tests/fixtures/gen_image_uris_expected.py,
run in the SDK's venv); the SDK is not installed here. tools/gen_image_uris.py checks
every version, region and processor of the shipped table against the SDK as well.
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from sagelab.errors import SagelabError
from sagelab.pipeline import images
from sagelab.pipeline.images import ImageError, image_uri

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "image_uris.json").read_text())
CASES: list[dict[str, Any]] = FIXTURE["cases"]


def _id(case: dict[str, Any]) -> str:
    parts = [case["spec"], case["region"], case["scope"], case.get("instance_type"), case.get("py_version")]
    return "/".join(str(p) for p in parts if p)


def test_fixture_covers_frameworks_scopes_and_partitions() -> None:
    specs = {c["spec"].split(":")[0] for c in CASES}
    assert specs == {"sklearn", "xgboost", "pytorch", "tensorflow", "spark", "huggingface"}
    assert {c["scope"] for c in CASES} == {"training", "inference", "processing"}
    uris = [c["uri"] for c in CASES if c["uri"]]
    for host in (".amazonaws.com/", ".amazonaws.com.cn/", ".c2s.ic.gov/", ".sc2s.sgov.gov/"):
        assert any(host in uri for uri in uris), host
    assert any(c["region"].startswith("us-gov-") and c["uri"] for c in CASES)
    assert any("-gpu-" in uri for uri in uris) and any("-cpu-" in uri for uri in uris)


def test_shipped_table_comes_from_the_fixture_sdk() -> None:
    assert images._table()["sdk"] == FIXTURE["sdk"]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_same_uri_as_the_sdk(case: dict[str, Any]) -> None:
    def call() -> str:
        return image_uri(case["spec"], case["region"], scope=case["scope"],
                         instance_type=case.get("instance_type"), py_version=case.get("py_version"))

    if case["uri"] is None:  # the SDK refuses it too
        with pytest.raises(ImageError):
            call()
    else:
        assert call() == case["uri"]


def test_image_error_is_a_sagelab_error() -> None:
    assert issubclass(ImageError, SagelabError)


@pytest.mark.parametrize(
    ("spec", "kwargs", "expected"),
    [
        ("sklearn:1.9-9", {}, "unknown sklearn training version '1.9-9' in 'sklearn:1.9-9'; "
                              "known: 0.20.0, 0.23-1, 1.0-1, 1.2-1, 1.4-2"),
        ("pytorch:9.9", {}, "(short forms: 0.4, 1.0,"),
        ("sklearn", {}, "'sklearn' names no version; write the framework as 'sklearn:1.4-2'"),
        ("sklern:1.2-1", {}, "unknown framework 'sklern' in 'sklern:1.2-1' (did you mean 'sklearn'?); "
                             "known: huggingface, pytorch, sklearn, spark, tensorflow, xgboost"),
        ("huggingface:4.28", {}, "'huggingface:4.28' names no base framework; "
                                 "write it as 'huggingface:4.28-pytorch2.0'"),
        ("huggingface:4.28-tensorflow2.11", {}, "huggingface training 4.28 has no base framework "
                                                "'tensorflow2.11'; known: pytorch2.0, pytorch2.0.0"),
        ("pytorch:2.1", {"py_version": "py38"}, "pytorch 2.1 has no image for Python version 'py38'; "
                                                "Python versions: py310"),
        ("sklearn:1.2-1", {"instance_type": "ml.p3.2xlarge"},
         "sklearn 1.2-1 has no gpu image (for ml.p3.2xlarge); processors: cpu"),
        ("huggingface:4.28-pytorch2.0", {"instance_type": "ml.m5.xlarge"},
         "huggingface 4.28-pytorch2.0 has no cpu image (for ml.m5.xlarge); processors: gpu"),
        ("spark:3.3", {}, "spark has no training images; scopes: processing"),
        ("sklearn:1.2-1", {"scope": "serving"}, "unknown image scope 'serving'; scopes: training, inference, processing"),
        ("sklearn:1.2-1", {"instance_type": "m5.xlarge"}, "'m5.xlarge' is not a SageMaker instance type"),
        ("pytorch:2.1", {"instance_type": "ml.inf2.xlarge"}, "needs an AWS Neuron image"),
        ("pytorch:2.1", {"instance_type": "ml.c6g.xlarge"}, "Graviton (arm64) instance, for which SageMaker "
                                                            "has inference images only"),
        ("sklearn:1.2-1", {"scope": "inference", "instance_type": "ml.c6g.xlarge"},
         "unknown sklearn Graviton inference version '1.2-1' in 'sklearn:1.2-1'; known: 1.0-1"),
        ("pytorch:2.1", {"instance_type": "ml.p2.xlarge"}, "ml.p2.xlarge cannot run pytorch 2.1: ml.p2 instances "
                                                           "are retired for pytorch 1.13 and later"),
    ],
)
def test_errors_say_what_is_unknown_and_what_is_known(spec: str, kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ImageError) as info:
        image_uri(spec, "us-east-1", **kwargs)
    assert expected in str(info.value)


def test_unknown_region_lists_the_regions() -> None:
    with pytest.raises(ImageError) as info:
        image_uri("sklearn:1.2-1", "xx-east-9")
    message = str(info.value)
    assert message.startswith("sklearn 1.2-1 has no image in region 'xx-east-9'; regions: af-south-1, ")
    assert "cn-north-1" in message and "us-gov-west-1" in message


def test_defaults_newest_python_and_cpu() -> None:
    # pytorch 1.8 lists py3 and py36; the SDK would ask for both an instance type and a Python version.
    assert image_uri("pytorch:1.8", "us-east-1").endswith("/pytorch-training:1.8-cpu-py36")
    assert image_uri("spark:3.5", "us-east-1", scope="processing").endswith("/sagemaker-spark-processing:3.5-cpu")


def test_docstring_examples() -> None:
    assert doctest.testmod(images, raise_on_error=True).attempted >= 2


def test_table_is_package_data() -> None:
    assert resources.files("sagelab.pipeline").joinpath("images.json").is_file()


def test_import_is_cheap() -> None:
    code = (
        "import sys, sagelab.pipeline.images as m\n"
        "assert m._table.cache_info().currsize == 0, 'table read on import'\n"
        "heavy = {'botocore', 'boto3', 'sagemaker'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
