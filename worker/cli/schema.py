"""What the CLI derives from the code for other readers: the state diagram and the JSON Schemas."""

from __future__ import annotations

from pathlib import Path

import click

from worker.cli.connection import CONTEXT, fail


@click.command(context_settings=CONTEXT, short_help="Print the state diagram (Mermaid).")
def diagram() -> None:
    """Print the playbook's state diagram (Mermaid), rendered from the transition table."""
    from workflows.stages import mermaid_diagram

    click.echo(mermaid_diagram(), nl=False)


@click.command(context_settings=CONTEXT, short_help="Write the JSON Schema of every input and the snapshot.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("schema"),
              show_default=True)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the files in --out are not up to date.")
def schema(out_dir: Path, check: bool) -> None:
    """Write the JSON Schema of every input (and of the snapshot), one file per update or query."""
    from workflows.schema import schema_files

    files = schema_files()
    if check:
        stale = [n for n, text in files.items() if not (out_dir / n).is_file() or (out_dir / n).read_text() != text]
        if stale:
            fail(f"out of date in {out_dir}: {', '.join(stale)}; run `amends schema --out {out_dir}`", 1)
        click.echo(f"{out_dir}: {len(files)} schema files up to date")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out_dir / name).write_text(text)
        click.echo(str(out_dir / name))
