"""`sagelab s3 ls|cp|cat`: look inside the project's object store."""

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from sagelab.store import ObjectStore

s3_app = typer.Typer(rich_markup_mode=None, help="Look inside the project's object store (s3:// URIs).", no_args_is_help=True)


Profile = Annotated[str, typer.Option("--profile", help="A profile; one with engine = \"sagemaker\" or s3_endpoint_url works on S3.")]


def _store(profile: str = "local") -> "ObjectStore":
    from sagelab.config import load_settings
    from sagelab.store import open_store

    return open_store(load_settings(profile=profile))


@s3_app.command("ls")
def ls(uri: Annotated[Optional[str], typer.Argument(help="s3://bucket/prefix (default: list buckets).")] = None,
       profile: Profile = "local") -> None:  # fmt: skip
    """List buckets, or the objects under a prefix."""
    store = _store(profile)
    if uri is None:
        for bucket in store.list_buckets():
            print(f"s3://{bucket}/")
        return
    for info in store.list(uri):
        print(f"{info.size:>12}  {info.uri}")


@s3_app.command("cp")
def cp(
    source: Annotated[str, typer.Argument(help="A local path, an s3:// URI, or - for standard input.")],
    target: Annotated[str, typer.Argument(help="A local path, an s3:// URI, or - for standard output.")],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Copy a folder or a whole prefix.")] = False,
    profile: Profile = "local",
) -> None:
    """Copy files into, out of, or within the store."""
    from sagelab.cli.progress import transfer_bar
    from sagelab.errors import StoreError
    from sagelab.store import S3Store

    store = _store(profile)
    if source.startswith("s3://") and target.startswith("s3://"):
        for info in list(store.list(source)) if recursive else [store.head(source)]:
            relative = info.key[len(source.split("/", 3)[3]) :].lstrip("/") if recursive else ""
            with store.open(info.uri) as stream:
                store.put_stream(f"{target.rstrip('/')}/{relative}" if recursive else target, stream)
    elif target.startswith("s3://"):
        if source == "-":
            store.put_stream(target, sys.stdin.buffer)
        elif recursive:
            if not Path(source).is_dir():
                raise StoreError(f"{source} is not a folder; drop --recursive to copy one file")
            for info in store.upload_dir(Path(source), target):
                print(f"upload: {info.uri}")
        else:
            if not Path(source).is_file():
                raise StoreError(f"{source} is not a file" + ("; add --recursive to copy a folder" if Path(source).is_dir() else ""))
            destination = f"{target}{Path(source).name}" if target.endswith("/") else target
            with transfer_bar(f"upload {Path(source).name}", Path(source).stat().st_size if isinstance(store, S3Store) else 0) as progress:
                if isinstance(store, S3Store) and progress:
                    info = store.put_file(destination, Path(source), progress)
                else:
                    info = store.put_file(destination, Path(source))
            print(f"upload: {info.uri}")
    elif source.startswith("s3://"):
        if target == "-":
            with store.open(source) as stream:
                shutil.copyfileobj(stream, sys.stdout.buffer)
        elif recursive:
            for info in store.download_prefix(source, Path(target)):
                print(f"download: {info.uri}")
        else:
            path = Path(target) / source.rsplit("/", 1)[-1] if Path(target).is_dir() else Path(target)
            with transfer_bar(f"download {path.name}", store.head(source).size if isinstance(store, S3Store) else 0) as progress:
                store.download_file(source, path, progress)
            print(f"download: {source} to {path}")
    else:
        raise StoreError("one of SOURCE and TARGET must be an s3:// URI")


@s3_app.command("cat")
def cat(uri: Annotated[str, typer.Argument(help="s3://bucket/key")], profile: Profile = "local") -> None:
    """Print an object."""
    with _store(profile).open(uri) as stream:
        shutil.copyfileobj(stream, sys.stdout.buffer)
