"""stockfeed's ops CLI: import stores, manage store keys, rebuild tiles, run the local stack.

Every command uses the operator's AWS credentials and the STOCKFEED_* settings of the target
stage; with AWS_ENDPOINT_URL set it works against the embedded AWS instead. Admin work is
deliberately not an HTTP route.
"""

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError

from chalicelib.errors import DemoDataInProdError, UnknownStoreError
from chalicelib.regeneration import snapshots_from_items
from chalicelib.runtime import Runtime
from chalicelib.settings import Settings
from chalicelib.stores import read_store_list
from ops.site import publish_schemas

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STORE_LIST = REPO_ROOT / "data" / "kr-mask-stores-2020-03-15.csv"
DEFAULT_HISTORY = REPO_ROOT / "data" / "mask_when_empty"


def _runtime() -> Runtime:
    return Runtime(Settings.from_environment())


class _AwsErrorsAsMessages(click.Group):
    """Turns missing AWS configuration into a one-line error instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (NoRegionError, NoCredentialsError, EndpointConnectionError) as error:
            raise click.ClickException(
                f"{str(error).rstrip('.')}. Set AWS_DEFAULT_REGION and credentials for the "
                "target account, or, for the local stack, the export line that `make run` prints."
            ) from error


@click.group(cls=_AwsErrorsAsMessages)
@click.option("--verbose", is_flag=True, help="Log at DEBUG level to stderr.")
def cli(verbose: bool) -> None:
    """Operate a stockfeed stage."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@cli.command("import-stores")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_STORE_LIST,
    show_default=True,
    help="Store list CSV with header addr,code,latitude,longitude,name,type.",
)
@click.option("--prune", is_flag=True, help="Delete stores that are not in the list.")
@click.option(
    "--demo",
    is_flag=True,
    help="Mark every store of the file as demo data. The prod stage rejects such an import.",
)
def import_stores(path: Path, prune: bool, demo: bool) -> None:
    """Import or update the store registry from a CSV file."""
    runtime = _runtime()
    store_list = read_store_list(path, source="demo" if demo else "official")
    try:
        with click.progressbar(length=len(store_list.stores), label="Importing stores") as bar:
            report = runtime.registry.import_stores(
                store_list.stores, prune=prune, progress=bar.update
            )
    except DemoDataInProdError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        json.dumps(
            {
                "rows_rejected": len(store_list.rejected),
                "without_coordinates": store_list.without_coordinates,
                "without_region": store_list.without_region,
                **vars(report),
            }
        )
    )


@cli.command("issue-key")
@click.argument("code")
def issue_key(code: str) -> None:
    """Issue (or rotate) a store's API key and print it once."""
    try:
        key = _runtime().keys.issue(code)
    except UnknownStoreError as error:
        raise click.ClickException(str(error)) from error
    click.echo(str(key))
    click.echo("Store this key now: only its hash is kept, it cannot be shown again.", err=True)


@cli.command("revoke-key")
@click.argument("code")
def revoke_key(code: str) -> None:
    """Revoke a store's API key."""
    _runtime().keys.revoke(code)
    click.echo(f"revoked the key of store {code}")


@cli.command("rebuild-tiles")
def rebuild_tiles() -> None:
    """Rebuild every tile and the manifest from the stores table."""
    runtime = _runtime()
    scan_started_at = runtime.regenerator.scan_marker()
    grouped = runtime.regenerator.group(snapshots_from_items(runtime.registry.scan()))
    with click.progressbar(length=len(grouped), label="Rebuilding tiles") as bar:
        written = runtime.regenerator.rebuild(
            grouped, scan_started_at=scan_started_at, progress=bar.update
        )
    runtime.regenerator.publish_full_lists()
    schemas = publish_schemas(
        runtime.s3, runtime.settings.bucket_name, runtime.settings.tile_prefix
    )
    click.echo(json.dumps({"tiles_published": written, "schemas_published": len(schemas)}))


@cli.group()
def local() -> None:
    """Run the whole pipeline on this machine, against the embedded AWS."""


@local.command("run")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="Day to replay (default: busiest).")
@click.option(
    "--speed",
    type=float,
    default=120.0,
    show_default=True,
    help="Replay speed: seconds of the real day per second of replay.",
)
@click.option(
    "--stores",
    "store_limit",
    type=int,
    default=None,
    help="Replay only the first N stores of that day (default: all).",
)
@click.option("--api-port", type=int, default=8000, show_default=True)
@click.option("--tiles-port", type=int, default=8001, show_default=True)
def local_run(
    day: datetime | None, speed: float, store_limit: int | None, api_port: int, tiles_port: int
) -> None:
    """Start the local stack, replay one real day, and serve until Ctrl-C."""
    from ops.local_stack import LocalOptions, run_local_stack

    options = LocalOptions(
        day=day.date() if day else None,
        speed=speed,
        store_limit=store_limit,
        api_port=api_port,
        tiles_port=tiles_port,
        interactive=True,
    )
    run_local_stack(options)


@local.command("smoke")
@click.option(
    "--stores",
    "store_limit",
    type=int,
    default=300,
    show_default=True,
    help="Replay only the first N stores of the day.",
)
@click.option(
    "--speed",
    type=float,
    default=3000.0,
    show_default=True,
    help="Replay speed: seconds of the real day per second of replay.",
)
def local_smoke(store_limit: int, speed: float) -> None:
    """Run the pipeline non-interactively and print one JSON line of figures."""
    from ops.local_stack import LocalOptions, run_local_stack

    options = LocalOptions(
        day=None, speed=speed, store_limit=store_limit, api_port=0, tiles_port=0, interactive=False
    )
    summary = run_local_stack(options)
    click.echo(json.dumps(summary))
    if summary["stores_imported"] < 1 or summary["tiles_published"] < 1:
        sys.exit(1)


from ops.deploy import deploy  # noqa: E402

cli.add_command(deploy)


if __name__ == "__main__":
    cli()
