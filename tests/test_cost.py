"""Cost: the instance catalog, prices from AWS's price list, estimates, recommendations and the idle audit.

Where fakes stand in for AWS: AWS's public price list files are served by a real HTTP server on
127.0.0.1 (SAGELAB_PRICE_LIST_URL), holding offer documents in AWS's layout built here. The Price
List API (GetProducts), ListApps, ListSpaces and DeleteApp, which moto does not implement, are
answered by botocore's Stubber on real clients (requests and canned responses validated against the
service models). Endpoints, endpoint configs, notebook instances, jobs and CloudWatch metrics are a
real moto server's. Every price below is made up for the test; none is AWS's.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from conftest import EXAMPLE, definition, processing_step, sagelab, write
from test_sagemaker_engine import REGION, aws, moto, moto_server  # noqa: F401 - moto's fixtures

from sagelab.config import Settings
from sagelab.cost import pricing
from sagelab.cost.catalog import Catalog, RegionPrices, load_catalog, save_prices
from sagelab.cost.estimate import billed_steps, estimate, unavailable
from sagelab.cost.idle import audit, jobs, studio_apps
from sagelab.cost.recommend import parse_size, recommend
from sagelab.cost.specs import specs_of
from sagelab.definition.parser import parse
from sagelab.engines.sagemaker.clients import AwsClients

# Made-up hourly prices per (use, type), in the test region.
PRICES = {
    ("training", "ml.m5.xlarge"): 0.25, ("training", "ml.g5.xlarge"): 1.5, ("training", "ml.c5.xlarge"): 0.2, ("training", "ml.m5.large"): 0.125,
    ("training", "ml.c6i.xlarge"): 0.19, ("training", "ml.g6.xlarge"): 0.9, ("training", "ml.p4d.24xlarge"): 30.0,
    ("processing", "ml.m5.xlarge"): 0.25, ("processing", "ml.m5.large"): 0.125, ("processing", "ml.r6i.4xlarge"): 1.2, ("processing", "ml.m6i.8xlarge"): 1.6,
    ("processing", "ml.m7i.8xlarge"): 1.7, ("processing", "ml.c6i.16xlarge"): 2.7, ("processing", "ml.r7i.4xlarge"): 1.3,
    ("hosting", "ml.m5.large"): 0.12, ("hosting", "ml.c6i.large"): 0.1, ("transform", "ml.m5.xlarge"): 0.24,
    ("notebook", "ml.t3.medium"): 0.05, ("studio", "ml.t3.medium"): 0.05, ("studio", "ml.g5.xlarge"): 1.41,
}  # fmt: skip


@pytest.fixture(autouse=True)
def prices_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test keeps its refreshed prices in its own file (the suite's cache is shared)."""
    path = tmp_path / "prices" / "instance-prices.json"
    monkeypatch.setenv("SAGELAB_PRICES", str(path))
    return path


def _product(sku: str, region: str, component: str, name: str, **attributes: str) -> dict[str, Any]:
    return {"sku": sku, "productFamily": "ML Instance", "attributes": {
        "regionCode": region, "locationType": "AWS Region", "component": component, "instanceName": name, "servicecode": "AmazonSageMaker",
        "usagetype": f"USE1-{component}:{name}", "vCpu": str(specs_of(name).vcpus), "memory": f"{specs_of(name).memory_gib:g} GiB", **attributes}}  # fmt: skip


def _terms(sku: str, usd: float, unit: str = "Hrs") -> dict[str, Any]:
    return {f"{sku}.JRTCKXETXF": {"offerTermCode": "JRTCKXETXF", "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "termAttributes": {},
            "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {"unit": unit, "description": f"${usd} per hour", "beginRange": "0",
                                                                  "endRange": "Inf", "pricePerUnit": {"USD": f"{usd:.10f}"}, "appliesTo": []}}}}  # fmt: skip


COMPONENTS = {"training": "Training", "processing": "Processing", "hosting": "Hosting", "transform": "BatchTransform", "notebook": "Notebook",
              "studio": "studio-jupyterlab"}  # fmt: skip


def offer_file(region: str = REGION, prices: dict[tuple[str, str], float] = PRICES) -> dict[str, Any]:
    """An offer file in the layout of AWS's public price list, with the rows a reader must leave out."""
    products, on_demand = {}, {}
    for number, ((use, name), usd) in enumerate(prices.items()):
        sku = f"SKU{number:04d}"
        products[sku] = _product(sku, region, COMPONENTS[use], name)
        on_demand[sku] = _terms(sku, usd)
    traps = {  # an upfront fee (no component, by quantity), a free tier row, a Local Zone, a costlier Code Editor Studio row
        "FEE": ({**_product("FEE", region, "", "ml.p4d.24xlarge"), "attributes": {"regionCode": region, "instanceName": "ml.p4d.24xlarge"}},
                _terms("FEE", 13.57, unit="Quantity")),
        "FREE": (_product("FREE", region, "Notebook", "ml.t2.medium", platoinstancetype="Notebook-Free"), _terms("FREE", 0.0)),
        "ZONE": (_product("ZONE", region, "Training", "ml.m5.xlarge", locationType="AWS Local Zone"), _terms("ZONE", 9.99)),
        "CODE": (_product("CODE", region, "studio-codeeditor", "ml.t3.medium"), _terms("CODE", 0.07)),
    }  # fmt: skip
    for sku, (product, terms) in traps.items():
        products[sku], on_demand[sku] = product, terms
    return {"formatVersion": "v1.0", "offerCode": "AmazonSageMaker", "version": "20261201000000", "publicationDate": "2026-12-01T00:00:00Z",
            "products": products, "terms": {"OnDemand": on_demand}}  # fmt: skip


def priced_catalog(region: str = REGION, prices: dict[tuple[str, str], float] = PRICES) -> Catalog:
    fetched = pricing.from_offer_file(offer_file(region, prices), "test offer file")
    save_prices(fetched.regions, fetched.specs)
    return load_catalog()


# --- the catalog -------------------------------------------------------------------------------


def test_specs_follow_ec2s_families_and_sizes() -> None:
    assert (specs_of("ml.m5.xlarge").vcpus, specs_of("ml.m5.xlarge").memory_gib) == (4, 16)
    assert (specs_of("ml.c5.9xlarge").vcpus, specs_of("ml.c5.9xlarge").memory_gib) == (36, 72)
    assert (specs_of("ml.r6i.large").vcpus, specs_of("ml.r6i.large").memory_gib) == (2, 16)
    assert (specs_of("ml.t3.medium").vcpus, specs_of("ml.t3.medium").memory_gib) == (2, 4)
    g5 = specs_of("ml.g5.12xlarge")
    assert (g5.vcpus, g5.memory_gib, g5.gpus, g5.gpu_memory_gib, g5.accelerator) == (48, 192, 4, 96, "4 × NVIDIA A10G (24 GiB)")
    assert specs_of("ml.g5.16xlarge").gpus == 1  # irregular: listed size by size
    assert specs_of("ml.p4d.24xlarge").gpu_memory_gib == 320
    inferentia = specs_of("ml.inf2.xlarge")
    assert inferentia.gpus == 0 and inferentia.accelerator == "1 × AWS Inferentia2 (32 GiB)"
    assert specs_of("ml.m6g.large").arm and not specs_of("ml.m6i.large").arm
    assert specs_of("ml.m5.24xlarge").network == "25 Gigabit" and specs_of("ml.m7i.xlarge").network == "Up to 12.5 Gigabit"


def test_the_shipped_catalog_holds_every_type_per_use_and_no_price() -> None:
    catalog = load_catalog()
    assert len(catalog.types) > 300
    assert {"training", "processing", "hosting", "transform", "notebook", "studio"} <= {use for k in catalog.types.values() for use in k.uses}
    assert "hosting" in catalog.types["ml.inf2.xlarge"].uses and "training" not in catalog.types["ml.inf2.xlarge"].uses
    assert all(k.specs.vcpus for k in catalog.types.values() if k.family in ("m5", "c6i", "r7i", "g5", "p4d"))
    assert catalog.price("ml.m5.large", "training", REGION) is None and catalog.regions == {}
    gpus = catalog.select(use="training", gpu=True, min_memory=64, current_only=True)
    assert gpus and all(k.specs.gpus and k.specs.memory_gib >= 64 and k.current for k in gpus)
    assert [k.specs.memory_gib for k in gpus] == sorted(k.specs.memory_gib for k in gpus)


def test_an_offer_file_gives_hourly_prices_per_use_and_leaves_fees_free_tier_and_local_zones_out() -> None:
    fetched = pricing.from_offer_file(offer_file(), "test")
    prices = fetched.regions[REGION]
    assert prices.published == "2026-12-01T00:00:00Z" and prices.source == "test"
    assert prices.prices["training"]["ml.m5.xlarge"] == 0.25  # not the Local Zone's 9.99
    assert prices.prices["transform"]["ml.m5.xlarge"] == 0.24
    assert prices.prices["studio"]["ml.t3.medium"] == 0.05  # JupyterLab's, not Code Editor's
    assert "ml.p4d.24xlarge" not in prices.prices.get("hosting", {}) and prices.prices["training"]["ml.p4d.24xlarge"] == 30.0  # the fee is no hour
    assert "ml.t2.medium" not in prices.prices["notebook"]
    assert fetched.specs["ml.m5.xlarge"]["memory_gib"] == 16


def test_refresh_reads_awss_public_price_list_and_the_listing_shows_prices(tmp_path: Path, prices_file: Path) -> None:
    """A real HTTP server on 127.0.0.1 serves the region index and the region's offer file, as pricing.us-east-1.amazonaws.com does."""
    files = {"/offers/v1.0/aws/AmazonSageMaker/current/region_index.json":
             {"regions": {REGION: {"regionCode": REGION, "currentVersionUrl": f"/offers/v1.0/aws/AmazonSageMaker/20261201000000/{REGION}/index.json"}}},
             f"/offers/v1.0/aws/AmazonSageMaker/20261201000000/{REGION}/index.json": offer_file()}  # fmt: skip
    with _serving(files) as url:
        env = {**os.environ, "SAGELAB_PRICE_LIST_URL": url}
        refreshed = sagelab("instances", "refresh", cwd=tmp_path, env=env)
        assert f"{REGION}: prices for" in refreshed.stdout and "published 2026-12-01" in refreshed.stdout
        unknown = sagelab("instances", "refresh", "--region", "xx-nowhere-1", cwd=tmp_path, env=env, check=False)
    assert unknown.returncode == 1 and "has no region 'xx-nowhere-1'" in unknown.stderr and "Traceback" not in unknown.stderr
    saved = json.loads(prices_file.read_text())
    assert saved["regions"][REGION]["prices"]["hosting"]["ml.c6i.large"] == 0.1 and "list prices" in saved["disclaimer"]
    listing = sagelab("instances", "--use", "training", "--sort", "price", cwd=tmp_path)
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    assert rows[0][0] == "ml.c6i.xlarge" and "$0.1900" in rows[0]  # the cheapest priced current type first
    assert "Prices: AWS price list file" in listing.stderr
    offline = sagelab("instances", "refresh", cwd=tmp_path, env={**os.environ, "SAGELAB_PRICE_LIST_URL": "http://127.0.0.1:9"}, check=False)
    assert offline.returncode == 1 and "cannot reach AWS's price list" in offline.stderr and "Traceback" not in offline.stderr
    assert json.loads(prices_file.read_text()) == saved  # a failed refresh keeps what was saved


def test_refresh_through_the_price_list_api() -> None:
    """GetProducts answered by the Stubber, in two pages; the request's filters are checked."""
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    document = offer_file()
    items = [json.dumps({"product": product, "serviceCode": "AmazonSageMaker", "terms": {"OnDemand": document["terms"]["OnDemand"][sku]},
                         "version": "20261201000000", "publicationDate": "2026-12-01T00:00:00Z"}) for sku, product in document["products"].items()]  # fmt: skip
    filters = [{"Type": "TERM_MATCH", "Field": "productFamily", "Value": "ML Instance"}, {"Type": "TERM_MATCH", "Field": "regionCode", "Value": REGION},
               {"Type": "TERM_MATCH", "Field": "locationType", "Value": "AWS Region"}]  # fmt: skip
    asked = {"ServiceCode": "AmazonSageMaker", "Filters": filters, "FormatVersion": "aws_v1", "MaxResults": 100}
    with Stubber(client) as stub:
        stub.add_response("get_products", {"PriceList": items[:10], "NextToken": "page2", "FormatVersion": "aws_v1"}, asked)
        stub.add_response("get_products", {"PriceList": items[10:], "FormatVersion": "aws_v1"}, {**asked, "NextToken": "page2"})
        fetched = pricing.fetch_api(client, [REGION], "aws")
        stub.assert_no_pending_responses()
    assert fetched.regions[REGION].prices == pricing.from_offer_file(document, "x").regions[REGION].prices
    assert fetched.regions[REGION].source == "AWS Price List API (GetProducts, profile aws)"
    assert pricing.api_region("eu-west-3") == "eu-central-1" and pricing.api_region("ap-northeast-1") == "ap-south-1"


# --- estimates -----------------------------------------------------------------------------------


def _pipeline() -> dict[str, Any]:
    prep = processing_step("Prep", "pass")
    prep["Arguments"]["ProcessingResources"]["ClusterConfig"].update({"InstanceType": {"Get": "Parameters.PrepType"}, "InstanceCount": 2})
    train = {"Name": "Train", "Type": "Training", "Arguments": {
        "AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "File"}, "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600}, "RoleArn": "arn:aws:iam::123456789012:role/r"}}  # fmt: skip
    tune = {"Name": "Tune", "Type": "Tuning", "Arguments": {
        "HyperParameterTuningJobConfig": {"Strategy": "Random", "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2}},
        "TrainingJobDefinition": {"ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}}}}  # fmt: skip
    score = {"Name": "Score", "Type": "Transform", "Arguments": {
        "ModelName": "m", "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}}},
        "TransformOutput": {"S3OutputPath": "s3://b/out"}, "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 3}}}  # fmt: skip
    emr = {"Name": "Etl", "Type": "EMR", "Arguments": {"ClusterId": "j-1", "StepConfig": {"HadoopJarStep": {"Jar": "command-runner.jar"}}}}
    return definition(prep, train, tune, score, emr, parameters=[{"Name": "PrepType", "Type": "String", "DefaultValue": "ml.m5.large"}])


def test_an_estimate_multiplies_instances_hours_and_prices_as_by_hand() -> None:
    catalog = priced_catalog()
    steps, elsewhere = billed_steps(parse(_pipeline()), {"PrepType": "ml.m5.xlarge"})
    assert [(s.name, s.use, s.instance_type, s.count, s.jobs) for s in steps] == [
        ("Prep", "processing", "ml.m5.xlarge", 2, 1), ("Train", "training", "ml.g5.xlarge", 1, 1),
        ("Tune", "training", "ml.c5.xlarge", 1, 10), ("Score", "transform", "ml.m5.xlarge", 3, 1)]  # fmt: skip
    assert elsewhere == [("Etl", "billed by Amazon EMR")]
    durations = {"Prep": (600.0, "history"), "Train": (1800.0, "history"), "Tune": (900.0, "history")}
    found = estimate(steps, durations, catalog, REGION, (1200.0, "default"))
    # by hand: 2 × 0.25 × 1/6 h + 1 × 1.5 × 0.5 h + 10 × 0.2 × 0.25 h + 3 × 0.24 × 1/3 h (the default 20 min)
    expected = [2 * 0.25 / 6, 1.5 * 0.5, 10 * 0.2 * 0.25, 3 * 0.24 / 3]
    assert [row.usd for row in found.rows] == pytest.approx(expected)
    assert found.usd == pytest.approx(sum(expected)) and found.rows[3].basis == "default"
    assert found.instance_hours == pytest.approx(2 / 6 + 0.5 + 2.5 + 1)
    elsewhere_region = estimate(steps, durations, catalog, "eu-west-3", (1200.0, "default"))
    assert elsewhere_region.usd == 0 and len(elsewhere_region.unpriced) == 4  # no prices there: unknown, never zero dollars claimed


def test_a_sagemaker_executions_cost_counts_billable_time_and_each_tuning_training() -> None:
    """`status --cost` on SageMaker: a Training step's BillableTimeInSeconds, a Tuning step's trainings one by one, others their span."""
    from sagelab.api.costs import execution_cost
    from sagelab.api.model import Execution, Step

    catalog = priced_catalog()
    t0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
    trainings = [{"TrainingJobName": f"t{i}", "TrainingJobArn": f"arn:t{i}", "CreationTime": t0, "TrainingJobStatus": "Completed",
                  "TrainingStartTime": t0, "TrainingEndTime": t0 + timedelta(minutes=6 * (i + 1)), "TunedHyperParameters": {}} for i in range(3)]  # fmt: skip
    steps = {
        "Prep": Step("Prep", "Processing", "Succeeded", t0, t0 + timedelta(minutes=12), _properties={}),
        "Train": Step("Train", "Training", "Succeeded", t0, t0 + timedelta(minutes=40), _properties={"BillableTimeInSeconds": 1800}),
        "Tune": Step("Tune", "Tuning", "Succeeded", t0, t0 + timedelta(minutes=30), _properties={"TrainingJobSummaries": trainings}),
        "Score": Step("Score", "Transform", "NotStarted", _properties={}),
    }
    execution = Execution("abc", "demo", "Failed", t0, t0 + timedelta(hours=1), None, {"PrepType": "ml.m5.xlarge"}, steps, "arn:x", _pipeline())
    found = execution_cost(execution, REGION, local=False, catalog=catalog)
    by_step = {row.step.name: row for row in found.rows}
    assert set(by_step) == {"Prep", "Train", "Tune"}  # Score never ran
    assert by_step["Prep"].usd == pytest.approx(2 * 0.25 * 12 / 60) and by_step["Prep"].basis == "the step's duration"
    assert by_step["Train"].usd == pytest.approx(1.5 * 0.5) and by_step["Train"].basis == "billable time SageMaker reported"
    assert by_step["Tune"].usd == pytest.approx(0.2 * (6 + 12 + 18) / 60)  # three trainings of 6, 12 and 18 minutes, one instance each
    assert by_step["Tune"].basis == "its 3 trainings, 2160 s in all"


def test_types_unavailable_for_the_use_or_the_region_are_named() -> None:
    catalog = priced_catalog()
    steps, _ = billed_steps(parse(_pipeline()), {"PrepType": "ml.m6i.large"})
    problems = [str(p) for p in unavailable(steps, catalog, REGION)]
    assert any("Prep: ml.m6i.large" in p and "not offered for processing in us-east-1" in p for p in problems)  # priced region lacks it
    steps, _ = billed_steps(parse(_pipeline()), {"PrepType": "ml.inf2.xlarge"})
    assert any("ml.inf2.xlarge cannot be used for processing (SageMaker takes it for hosting, notebook, transform)" in str(p) for p in unavailable(steps, catalog, REGION))
    steps, _ = billed_steps(parse(_pipeline()), {"PrepType": "ml.m5.huge"})
    assert any("ml.m5.huge is not a SageMaker instance type" in str(p) for p in unavailable(steps, catalog, REGION))
    assert unavailable(steps[1:], catalog, "eu-west-3") == []  # nothing known against them there


def test_cost_and_the_run_summary_price_a_pipeline_from_its_local_runs(project: Path) -> None:
    """The example pipeline (three steps on the InstanceType parameter, ml.m5.large) runs locally; `sagelab cost` then uses its durations."""
    before = sagelab("cost", f"{EXAMPLE}/pipeline.py:pipeline", cwd=project)
    assert "default (10 min)" in before.stdout and "No prices for us-east-1 yet" in before.stderr and "Total: $0.00" in before.stdout
    priced_catalog()
    ran = sagelab("run", f"{EXAMPLE}/pipeline.py:pipeline", "--cache", "content", cwd=project)
    assert "On SageMaker this run would cost about $" in ran.stdout
    status = sagelab("status", "latest", "--cost", cwd=project)
    assert "would have cost on SageMaker (estimate)" in status.stdout and "$0.1250" in status.stdout
    cached = sagelab("run", f"{EXAMPLE}/pipeline.py:pipeline", "--cache", "content", cwd=project)  # every step reused: none of it counts
    assert cached.stdout.count("cached: reused from execution") >= 3, cached.stdout
    assert "On SageMaker this run would cost about $0.0000" in cached.stdout, cached.stdout
    assert "no job ran" in sagelab("status", "latest", "--cost", cwd=project).stdout
    after = sagelab("cost", f"{EXAMPLE}/pipeline.py:pipeline", "-p", "InstanceType=ml.m5.xlarge", cwd=project)
    rows = {line.split()[0]: line for line in after.stdout.splitlines()[2:] if line.startswith(("Preprocess", "Train", "Evaluate"))}
    assert set(rows) == {"Preprocess", "Train", "Evaluate"}
    assert all("ml.m5.xlarge" in row and "$0.25" in row and "local median of 1 run + 90 s start" in row for row in rows.values())
    wrong = sagelab("cost", f"{EXAMPLE}/pipeline.py:pipeline", "-p", "InstanceType=ml.inf2.xlarge", cwd=project, check=False)
    assert wrong.returncode == 1 and "cannot be used for processing" in wrong.stderr and "Traceback" not in wrong.stderr


def test_validate_on_an_aws_profile_refuses_a_type_the_region_lacks(project: Path) -> None:
    priced_catalog(region="eu-west-1")
    write(project / "pipeline.json", definition(_pipeline()["Steps"][0], parameters=[{"Name": "PrepType", "Type": "String", "DefaultValue": "ml.g6e.xlarge"}]))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.sagelab.profiles.aws]\nengine = "sagemaker"\nregion = "eu-west-1"\n')
    found = sagelab("validate", "pipeline.json", "--profile", "aws", cwd=project, check=False)
    assert found.returncode == 1 and "ml.g6e.xlarge is not offered for processing in eu-west-1" in found.stderr
    assert sagelab("validate", "pipeline.json", cwd=project).returncode == 0  # locally it runs


# --- recommendations -----------------------------------------------------------------------------


def test_recommendations_fit_the_data_in_current_generations_cheapest_first() -> None:
    catalog = priced_catalog()
    assert parse_size("20GB") == 20 and parse_size("512 MB") == 0.5 and parse_size("1.5TiB") == 1536
    task, needed, choices = recommend(catalog, "pandas", 20, REGION)
    assert needed == 102 and task.use == "processing"
    assert [c.instance.name for c in choices] == ["ml.m6i.8xlarge", "ml.r6i.4xlarge", "ml.c6i.16xlarge"]  # m7i costs more than m6i here
    assert all(c.instance.specs.memory_gib >= 102 and c.instance.current for c in choices)
    _, _, gpu = recommend(catalog, "training-gpu", 2, REGION)
    assert [c.instance.name for c in gpu] == ["ml.g6.xlarge", "ml.p4d.24xlarge"]
    _, _, cheap = recommend(catalog, "training-gpu", 2, REGION, budget=1.0)
    assert [c.instance.name for c in cheap] == ["ml.g6.xlarge"]
    _, _, unpriced = recommend(load_catalog(), "notebook", 1, "eu-west-3")  # no prices: the smallest fitting, newest
    assert unpriced and all(not c.instance.name.startswith(("ml.t2", "ml.m4", "ml.m5.")) and c.hourly is None for c in unpriced)


def test_recommend_command(tmp_path: Path) -> None:
    priced_catalog()
    found = sagelab("instances", "recommend", "--task", "training-gpu", "--data-size", "2GB", cwd=tmp_path)
    assert "ml.g6.xlarge" in found.stdout and "scikit-learn does not" in found.stdout
    none = sagelab("instances", "recommend", "--task", "pandas", "--data-size", "20GB", "--budget", "0.01", cwd=tmp_path, check=False)
    assert none.returncode == 1 and "No current-generation type fits within $0.01/h" in none.stdout
    bad = sagelab("instances", "recommend", "--task", "gaming", cwd=tmp_path, check=False)
    assert bad.returncode == 1 and "--task must be one of notebook, pandas" in bad.stderr


# --- the idle audit ------------------------------------------------------------------------------


@pytest.fixture
def aws_profile(moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AwsClients:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    return AwsClients(Settings(root=tmp_path, store=tmp_path / "store", engine="sagemaker", region=REGION))


def _endpoint(moto: str, name: str, instance: str, count: int) -> None:
    sm = aws(moto, "sagemaker")
    sm.create_model(ModelName=name, PrimaryContainer={"Image": "img"}, ExecutionRoleArn="arn:aws:iam::123456789012:role/r")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": instance, "InitialInstanceCount": count}])  # fmt: skip
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def test_idle_finds_unused_endpoints_notebooks_and_long_jobs_on_moto(moto: str, aws_profile: AwsClients, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's endpoints, notebook instances and CloudWatch metrics; its clock is three hours on (everything is older than the two-hour
    window). Studio (ListApps, which moto lacks) comes back as a problem, not a failure; moto's jobs end at once (jobs: the Stubber below)."""
    _endpoint(moto, "idle-ep", "ml.m5.large", 2)
    _endpoint(moto, "busy-ep", "ml.m5.large", 1)
    later = datetime.now(timezone.utc) + timedelta(hours=3)
    aws(moto, "cloudwatch").put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
        "MetricName": "Invocations", "Dimensions": [{"Name": "EndpointName", "Value": "busy-ep"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        "Timestamp": later - timedelta(minutes=30), "Value": 12.0}])  # fmt: skip
    sm = aws(moto, "sagemaker")
    sm.create_notebook_instance(NotebookInstanceName="explore", InstanceType="ml.t3.medium", RoleArn="arn:aws:iam::123456789012:role/r")
    catalog = priced_catalog()
    found, problems = audit(aws_profile, 2, now=later)
    by_name = {item.name: item for item in found}
    assert "busy-ep" not in by_name and by_name["idle-ep"].why == "no invocations in 2 h"
    assert by_name["idle-ep"].hourly(catalog, REGION) == pytest.approx(0.24)  # 2 × 0.12
    assert by_name["explore"].hourly(catalog, REGION) == 0.05 and by_name["explore"].stop[1] == "StopNotebookInstance"
    assert any(p.startswith("Studio apps could not be listed") for p in problems)


def test_idle_stop_asks_for_each_item(moto: str, aws_profile: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sagelab idle --stop` in this process (moto as above, its clock moved on): yes to the endpoint, no to the notebook instance."""
    from typer.testing import CliRunner

    import sagelab.cost.idle as idle_module
    from sagelab.cli.app import app

    _endpoint(moto, "idle-ep", "ml.m5.large", 1)
    sm = aws(moto, "sagemaker")
    sm.create_notebook_instance(NotebookInstanceName="explore", InstanceType="ml.t3.medium", RoleArn="arn:aws:iam::123456789012:role/r")
    priced_catalog()
    monkeypatch.setattr(idle_module, "clock", lambda: datetime.now(timezone.utc) + timedelta(hours=3))
    (tmp_path / "pyproject.toml").write_text('[tool.sagelab.profiles.aws]\nengine = "sagemaker"\nregion = "us-east-1"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["idle", "--profile", "aws", "--stop"], input="y\nn\n")
    assert result.exit_code == 0, result.output
    assert "DeleteEndpoint endpoint idle-ep?" in result.output and "StopNotebookInstance notebook instance explore?" in result.output
    assert "kept explore" in result.output and "Together: $0.17 per hour" in result.output
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == []
    assert sm.describe_notebook_instance(NotebookInstanceName="explore")["NotebookInstanceStatus"] == "InService"


def test_studio_apps_are_listed_with_their_space_and_deleted_with_the_right_call(tmp_path: Path) -> None:
    """ListSpaces, ListApps and DeleteApp answered by the Stubber (moto has none of them)."""
    clients = AwsClients(Settings(root=tmp_path, store=tmp_path / "store", engine="sagemaker", region=REGION))
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    clients._clients["sagemaker"] = client
    now = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
    apps = [
        {"DomainId": "d-1", "SpaceName": "team-space", "AppType": "JupyterLab", "AppName": "default", "Status": "InService",
         "CreationTime": now - timedelta(hours=30), "ResourceSpec": {"InstanceType": "ml.g5.xlarge"}},
        {"DomainId": "d-1", "UserProfileName": "ana", "AppType": "JupyterServer", "AppName": "default", "Status": "InService",
         "CreationTime": now - timedelta(hours=30), "ResourceSpec": {"InstanceType": "system"}},
        {"DomainId": "d-1", "SpaceName": "new-space", "AppType": "CodeEditor", "AppName": "default", "Status": "InService",
         "CreationTime": now - timedelta(minutes=10), "ResourceSpec": {"InstanceType": "ml.t3.medium"}},
    ]  # fmt: skip
    spaces = [{"DomainId": "d-1", "SpaceName": "team-space", "Status": "InService", "OwnershipSettingsSummary": {"OwnerUserProfileName": "ana"}}]
    with Stubber(client) as stub:
        stub.add_response("list_spaces", {"Spaces": spaces}, {})
        stub.add_response("list_apps", {"Apps": apps}, {})
        found = studio_apps(clients, now - timedelta(hours=2), now)
        assert [(i.name, i.instances, i.why) for i in found] == [("JupyterLab default (space team-space of ana)", (("ml.g5.xlarge", 1),), "running for 30 h")]
        service, operation, parameters = found[0].stop
        stub.add_response("delete_app", {}, {"DomainId": "d-1", "AppType": "JupyterLab", "AppName": "default", "SpaceName": "team-space"})
        clients.call(service, operation, found[0].name, **parameters)
        stub.assert_no_pending_responses()
    assert found[0].hourly(priced_catalog(), REGION) == 1.41


def test_jobs_in_progress_longer_than_the_window_are_listed_with_their_instances(tmp_path: Path) -> None:
    """ListTrainingJobs, ListProcessingJobs, ListTransformJobs and DescribeTrainingJob answered by the Stubber (moto's jobs end at once)."""
    clients = AwsClients(Settings(root=tmp_path, store=tmp_path / "store", engine="sagemaker", region=REGION))
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    clients._clients["sagemaker"] = client
    now = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
    since = now - timedelta(hours=2)
    started = now - timedelta(hours=26)
    summary = {"TrainingJobName": "long-train", "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/long-train",
               "CreationTime": started, "TrainingJobStatus": "InProgress"}  # fmt: skip
    described = {**summary, "ModelArtifacts": {"S3ModelArtifacts": ""}, "AlgorithmSpecification": {"TrainingInputMode": "File"},
                 "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
                 "StoppingCondition": {"MaxRuntimeInSeconds": 86400 * 2}, "SecondaryStatus": "Training"}  # fmt: skip
    asked = {"StatusEquals": "InProgress", "CreationTimeBefore": since}
    with Stubber(client) as stub:
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [summary]}, asked)
        stub.add_response("describe_training_job", described, {"TrainingJobName": "long-train"})
        stub.add_response("list_processing_jobs", {"ProcessingJobSummaries": []}, asked)
        stub.add_response("list_transform_jobs", {"TransformJobSummaries": []}, asked)
        found = jobs(clients, since, now)
        stub.assert_no_pending_responses()
    assert [(i.kind, i.name, i.instances, i.why, i.stop) for i in found] == [
        ("training job", "long-train", (("ml.g5.xlarge", 2),), "in progress for 26 h", ("sagemaker", "StopTrainingJob", {"TrainingJobName": "long-train"}))]
    assert found[0].hourly(priced_catalog(), REGION) == 3.0


def _serving(files: dict[str, Any]) -> Any:
    from contextlib import contextmanager

    @contextmanager
    def serve() -> Iterator[str]:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = json.dumps(files[self.path]).encode() if self.path in files else b"{}"
                self.send_response(200 if self.path in files else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    return serve()


def test_a_sagemaker_run_refuses_an_unavailable_type_before_upserting(moto: str, project: Path) -> None:
    """moto's SageMaker would take the pipeline; the run stops first, naming the step, and nothing is uploaded or upserted."""
    priced_catalog()
    write(project / "pipeline.json", definition(_pipeline()["Steps"][0], parameters=[{"Name": "PrepType", "Type": "String", "DefaultValue": "ml.m6i.large"}]))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.sagelab.profiles.aws]\nengine = "sagemaker"\nregion = "us-east-1"\n'
                         'role = "arn:aws:iam::123456789012:role/r"\nbucket = "team-bucket"\n')  # fmt: skip
    ran = sagelab("run", "pipeline.json", "--profile", "aws", cwd=project, env={**os.environ, "AWS_ENDPOINT_URL": moto}, check=False)
    assert ran.returncode == 1 and "step Prep: ml.m6i.large is not offered for processing in us-east-1" in ran.stderr
    assert "Traceback" not in ran.stderr and aws(moto, "sagemaker").list_pipelines()["PipelineSummaries"] == []
