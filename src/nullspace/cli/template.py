"""`nullspace template build | list | delete | prune`."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from nullspace._exceptions import NullspaceError, TemplateBuildError
from nullspace.templates import (
    BuildProgress,
    TemplateImage,
    TemplateSpec,
    _store,
    builtin_names,
    builtin_spec,
    default_data_dir,
    delete_template,
    ensure_template,
    find_template,
    list_templates,
    load_spec,
    prune_templates,
)

app = typer.Typer(help="Build and manage templates", no_args_is_help=True)
console = Console(highlight=False)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where templates live.",
        show_default="$NULLSPACE_HOME or /var/lib/nullspace",
    ),
]


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


def _resolve(name_or_path: str, data_dir: Path) -> TemplateSpec:
    """A spec file path (or a directory holding template.toml), a built-in name, or a template
    built earlier (from its spec file if that still exists, else its stored spec)."""
    path = Path(name_or_path)
    if path.is_dir():
        return load_spec(path / "template.toml")
    if name_or_path.endswith(".toml") or "/" in name_or_path or path.is_file():
        return load_spec(path)
    if name_or_path in builtin_names():
        return builtin_spec(name_or_path)
    image = find_template(name_or_path, data_dir)
    if image is None:
        known = ", ".join(builtin_names())
        raise typer.BadParameter(
            f"{name_or_path!r} is not a spec file, a built-in template ({known}) or a template built before",
            param_hint="NAME_OR_PATH",
        )
    source = (_store.read_meta(data_dir, image.name, image.digest) or {}).get("source")
    if isinstance(source, str) and Path(source).is_file():
        return load_spec(source)
    return image.spec


class _StepColumn(SpinnerColumn):
    """A spinner while running, a green check when done, a red cross when failed."""

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("failed"):
            return Text("✗", style="red bold")
        return super().render(task)


class _BuildDisplay:
    """One progress task per step; the newest log lines, dimmed, below them."""

    def __init__(self, out: Console, tail: int = 8):
        self.progress = Progress(
            _StepColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            console=out,
        )
        self.lines: collections.deque[str] = collections.deque(maxlen=tail)
        self.tasks: dict[str, TaskID] = {}
        self.current: str | None = None
        self.ran: list[str] = []
        self.cached: list[str] = []
        self.live = Live(Group(self.progress, self), console=out, refresh_per_second=12)

    def __rich__(self) -> Text:
        text = Text(style="dim", no_wrap=True, overflow="ellipsis")
        text.append("\n".join(self.lines))
        return text

    def __call__(self, event: BuildProgress) -> None:
        if event.kind == "start":
            label = f"[{event.index}/{event.total}] {event.message}"
            self.tasks[event.step] = self.progress.add_task(label, total=None)
            self.current = event.step
            self.lines.clear()
        elif event.kind == "done":
            task = self.tasks[event.step]
            if event.cached:
                label = self.progress.tasks[task].description
                self.progress.update(task, description=f"[dim]{label} (cached)[/]")
                self.cached.append(event.step)
            elif event.step != "commit":
                self.ran.append(event.step)
            self.progress.update(task, total=1, completed=1)
        elif event.message.strip():
            self.lines.append(event.message.expandtabs())

    def fail(self) -> None:
        if self.current is not None:
            task = self.tasks[self.current]
            label = self.progress.tasks[task].description
            self.progress.update(task, description=f"[red]{label}[/]", failed=True)
            self.progress.stop_task(task)
        self.lines.clear()


@app.command()
def build(
    name_or_path: Annotated[
        str, typer.Argument(metavar="NAME_OR_PATH", help="Built-in name or a spec .toml file.")
    ],
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
) -> None:
    """Build a template from a spec file or a built-in name (instant if nothing changed).

    Layered templates (a `template:` base, or npm/files/run steps) reuse every cached step
    up to the first one that changed.
    """
    data_dir = data_dir or default_data_dir()
    started = time.monotonic()
    display = _BuildDisplay(console)
    try:
        spec = _resolve(name_or_path, data_dir)
        with display.live:
            try:
                image = ensure_template(spec, data_dir, display, force=force)
            except BaseException:
                display.fail()
                raise
            display.lines.clear()
    except TemplateBuildError as exc:
        if exc.log:
            console.print(Text(exc.log, style="dim"))
        console.print(f"[red bold]error:[/] {exc}")
        raise typer.Exit(1) from None
    except NullspaceError as exc:
        console.print(f"[red bold]error:[/] {exc}")
        raise typer.Exit(1) from None
    elapsed = time.monotonic() - started
    cached = not display.tasks
    verb = "up to date" if cached else f"built in {elapsed:.1f} s"
    console.print(f"[green bold]{image.name}[/] {verb} (digest {image.digest[:12]})")
    if display.ran or display.cached:
        ran = ", ".join(display.ran) or "none"
        console.print(f"  steps   ran: {ran}; cached: {len(display.cached)}", soft_wrap=True)
    if len(image.layers) > 1:
        console.print(f"  layers  {len(image.layers)} (top: {image.rootfs})", soft_wrap=True)
    else:
        console.print(f"  rootfs  {image.rootfs}", soft_wrap=True)
    console.print(f"  size    {_human(image.size_bytes)}{' added' if len(image.layers) > 1 else ''}")


@app.command("list")
def list_(data_dir: DataDir = None) -> None:
    """List built templates."""
    images = list_templates(data_dir or default_data_dir())
    if not images:
        console.print("No templates built yet. Try: nullspace template build code-interpreter")
        return
    table = Table("name", "base", "layers", "digest", "size", "built at", box=None, header_style="bold")
    for image in images:
        table.add_row(
            image.name, image.spec.base, str(len(image.layers)), image.digest[:12],
            _human(image.size_bytes), _when(image),
        )  # fmt: skip
    console.print(table)


def _when(image: TemplateImage) -> str:
    return image.built_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="Template name.")],
    data_dir: DataDir = None,
) -> None:
    """Delete every build of a template (and layers nothing else uses). Make sure no sandbox
    uses it; a template other templates are built on cannot be deleted."""
    try:
        deleted = delete_template(name, data_dir or default_data_dir())
    except NullspaceError as exc:
        console.print(f"[red bold]error:[/] {exc}")
        raise typer.Exit(1) from None
    if not deleted:
        console.print(f"[red bold]error:[/] no template named {name!r}")
        raise typer.Exit(1)
    console.print(f"deleted {name}")


@app.command()
def prune(data_dir: DataDir = None) -> None:
    """Delete old builds: those that are not current, not the base of a current build and not in
    use by a running sandbox (a rebuild leaves the old one behind: 1.1 GiB for code-interpreter)."""
    removed = prune_templates(data_dir or default_data_dir())
    for build in removed:
        console.print(f"deleted {build}")
    console.print(f"{len(removed)} old build{'s' if len(removed) != 1 else ''} deleted")
