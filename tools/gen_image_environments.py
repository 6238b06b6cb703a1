"""Write src/sagelab/containers/environments/images.json: each image's packages, and what of them installs on each Python.

    python tools/gen_image_environments.py            # needs the package index pip is configured with

Reads tools/image_packages.json (what each image ships, read from its build files; each list
names its source). For every supported Python and platform (Linux x86_64, Linux aarch64, macOS
arm64) it picks, per package, the image's release or the closest release with wheels there
(`pip index versions --only-binary=:all: --python-version --platform`), then checks with
`uv pip compile` that the picks install together. When they do not, the
package uv names in the conflict loses its pin (never the framework, numpy, scipy or pandas),
until they do, and the release uv then takes is recorded. Everything is
resolved as of EXCLUDE_NEWER, so rerunning the tool gives the same file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sagelab.containers.environments.manifest import closest, release  # noqa: E402

PYTHONS = ("3.10", "3.11", "3.12", "3.13")
EXCLUDE_NEWER = "2026-12-01T00:00:00Z"
PLATFORMS = {  # pip's --platform tags (any of them) and uv's --python-platform, per platform a user may be on
    "linux-x86_64": (["manylinux_2_28_x86_64", "manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux2010_x86_64", "manylinux_2_12_x86_64",
                      "manylinux1_x86_64", "manylinux_2_5_x86_64", "any"], "x86_64-manylinux_2_28"),
    "linux-aarch64": (["manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64", "any"], "aarch64-manylinux_2_28"),
    "macos-arm64": ([f"macosx_{v}_{a}" for v in ("11_0", "12_0", "13_0", "14_0") for a in ("arm64", "universal2")] + ["any"], "aarch64-apple-darwin"),
}
CORE = ("numpy", "scipy", "pandas")  # kept pinned with the framework, whatever else gives way


def available(name: str, python: str, platform: str) -> list[str]:
    """Releases of `name` with wheels for `python` on `platform` (a key of PLATFORMS)."""
    tags = PLATFORMS[platform][0]
    command = [sys.executable, "-m", "pip", "index", "versions", "--only-binary=:all:", "--python-version", python,
               *[part for tag in tags for part in ("--platform", tag)], name]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    line = next((x for x in output.splitlines() if x.startswith("Available versions:")), "Available versions:")
    return sorted({v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()}, key=release)


def compiles(pins: dict[str, str], python: str, platform: str) -> tuple[bool, dict[str, str], str]:
    """Whether `pins` install together on `python` and `platform`; the versions uv picks, or uv's reason."""
    requirements = "\n".join(f"{n}=={v}" if v else n for n, v in pins.items())
    command = ["uv", "pip", "compile", "-", "--quiet", "--python-version", python, "--python-platform", PLATFORMS[platform][1],
               "--only-binary", ":all:", "--exclude-newer", EXCLUDE_NEWER, "--no-header", "--no-annotate"]  # fmt: skip
    result = subprocess.run(command, input=requirements, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return False, {}, " ".join(result.stderr.split())
    return True, dict(line.split("==", 1) for line in result.stdout.split() if "==" in line), ""


def installable(packages: dict[str, str], python: str, platform: str,
                releases: dict[tuple[str, str, str], list[str]]) -> tuple[dict[str, str] | None, list[str]]:  # fmt: skip
    """The releases to install for one image on `python` and `platform` (None when its framework has none), and notes."""
    framework = next(iter(packages))
    pins: dict[str, str] = {}
    notes: list[str] = []
    for name, wanted in packages.items():
        pick = closest(wanted, releases[(name, python, platform)])
        if pick is None:
            if name == framework:
                return None, [f"no release of {name} has wheels for Python {python} on {platform}"]
            notes.append(f"{name}: no release has wheels for Python {python} on {platform}; left out")
            continue
        pins[name] = pick
    for _ in range(len(pins)):
        ok, resolved, why = compiles(pins, python, platform)
        if ok:
            return {n: (v or resolved.get(n, "")) for n, v in pins.items()}, notes
        # uv names the pins that conflict ("you require python-dateutil==2.8.1"): the first that may give way does.
        named = [n.lower() for n in re.findall(r"you require ([A-Za-z0-9_.-]+)==", why)]
        loose = [n for n in named if n in pins and n != framework and n not in CORE and pins[n]]
        if not loose:
            return None, notes + [f"the picks do not install together: {why}"]
        notes.append(f"{loose[0]} {pins[loose[0]]} does not install with the rest; uv's choice instead")
        pins[loose[0]] = ""
    return None, notes + ["the picks do not install together"]


def main() -> None:
    source = json.loads((ROOT / "tools" / "image_packages.json").read_text())
    names = {name for versions in source["images"].values() for entry in versions.values() for name in entry["packages"]}
    jobs = [(name, python, platform) for name in sorted(names) for python in PYTHONS for platform in PLATFORMS]
    with ThreadPoolExecutor(8) as pool:
        releases = dict(zip(jobs, pool.map(lambda job: available(*job), jobs)))
    targets = [(family, version, python, platform) for family, versions in source["images"].items() for version in versions
               for python in PYTHONS for platform in PLATFORMS]  # fmt: skip

    def pick(target: tuple[str, str, str, str]) -> tuple[dict[str, str] | None, list[str]]:
        family, version, python, platform = target
        found = installable(source["images"][family][version]["packages"], python, platform, releases)
        print(f"{family}:{version} on {python} {platform}: {found}", file=sys.stderr, flush=True)
        return found

    with ThreadPoolExecutor(12) as pool:
        picks = dict(zip(targets, pool.map(pick, targets)))
    images: dict[str, dict[str, object]] = {}
    for family, versions in source["images"].items():
        for version, entry in versions.items():
            packages = entry["packages"]
            found = {(python, platform): picks[(family, version, python, platform)] for python in PYTHONS for platform in PLATFORMS}
            images.setdefault(family, {})[version] = {
                "framework": next(iter(packages)), "python": entry["python"], "source": entry["source"], "packages": packages,
                "installable": {python: {platform: found[(python, platform)][0] for platform in PLATFORMS if found[(python, platform)][0]}
                                for python in PYTHONS},
                "notes": {f"{python} {platform}": notes for (python, platform), (_, notes) in found.items() if notes},
            }  # fmt: skip
    document = {
        "about": "Generated by tools/gen_image_environments.py from tools/image_packages.json: for each image version, the "
                 "packages it ships ('packages', with 'source'), and per Python and platform the releases sagelab installs "
                 "('installable'): the image's own, or the closest with wheels there, checked to install together.",
        "exclude_newer": EXCLUDE_NEWER,
        "images": images,
    }  # fmt: skip
    target = ROOT / "src" / "sagelab" / "containers" / "environments" / "images.json"
    target.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    if not re.match(r"^\d{4}-\d{2}-\d{2}", EXCLUDE_NEWER):
        raise SystemExit("EXCLUDE_NEWER must be a date")
    main()
