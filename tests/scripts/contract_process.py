"""A processing script that checks what SageMaker's processing container promises."""

import json
import os
import sys

BASE = "/opt/ml"
assert sys.argv[1:] == ["--mode", "check"], sys.argv
config = json.load(open(f"{BASE}/config/processingjobconfig.json"))
assert config["ProcessingJobName"].startswith("pipelines-"), config
assert config["AppSpecification"]["ContainerArguments"] == ["--mode", "check"]
assert [i["InputName"] for i in config["ProcessingInputs"]] == ["data", "single", "code"]
resources = json.load(open(f"{BASE}/config/resourceconfig.json"))
assert resources["current_host"] == "algo-1" and resources["hosts"] == ["algo-1"]
assert sorted(os.listdir(f"{BASE}/processing/input/data")) == ["a.csv", "nested"]
assert open(f"{BASE}/processing/input/data/nested/b.csv").read() == "b\n"
assert os.listdir(f"{BASE}/processing/input/single") == ["a.csv"]
assert os.path.isdir(f"{BASE}/processing/output/result")  # output folders exist before the script runs
assert os.environ["STAGE"] == "test"
# a step may destroy its inputs: they are copies
os.remove(f"{BASE}/processing/input/data/a.csv")
with open(f"{BASE}/processing/input/single/a.csv", "w") as f:
    f.write("edited")
with open(f"{BASE}/processing/output/result/report.json", "w") as f:
    json.dump({"metrics": {"score": 0.75}}, f)
os.makedirs(f"{BASE}/processing/output/result/deep/er", exist_ok=True)
open(f"{BASE}/processing/output/result/deep/er/x.txt", "w").write("x")
print("contract ok")
