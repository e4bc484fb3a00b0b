"""Execute the notebooks in a real Jupyter kernel and write an executed copy and an HTML page of each.

    python notebooks/execute.py                          # all three, full budgets: runs/notebooks-<time>/
    python notebooks/execute.py --quick                  # budgets of seconds (what the tests run)
    python notebooks/execute.py part3_dqn.ipynb -p seeds=[0,1] -p 'dqn={total_steps: 5000}' --out DIR

For each notebook NAME.ipynb: DIR/NAME/ holds its runs (the notebook's ``out`` parameter), DIR/NAME.ipynb
the executed notebook and DIR/NAME.html its HTML page (figures embedded). Parameters are injected as
papermill does: a cell tagged ``injected-parameters`` after the cell tagged ``parameters``; values are
YAML (``-p quick=true``, ``-p seed=1``, ``-p 'regression={epochs: 50}'``). A cell that fails stops the
notebook (its page still shows the error); exit code 1, or 2 for a parameter the notebook does not have.
"""

from __future__ import annotations

import argparse
import ast
import copy
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

HERE = Path(__file__).resolve().parent
NOTEBOOKS = sorted(HERE.glob("part*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# JupyterLab's page without the scripts it would fetch from the network (require.js, MathJax, Mermaid): the
# notebooks write their formulas in plain Unicode and show no JavaScript outputs, so the page works offline.
# It also shows GIFs (the DQN episode), which nbconvert leaves out.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_other scoped -%}
{%- if 'image/gif' in output.data -%}
<div class="jp-RenderedImage jp-OutputArea-output">
<img src="data:image/gif;base64,{{ output.data['image/gif'] | escape_html }}" alt="animation">
</div>
{%- endif -%}
{%- endblock data_other -%}
"""
# nbconvert's order of preference among an output's representations, with GIF before plain text
DATA_PRIORITY = [
    "text/html",
    "text/markdown",
    "image/svg+xml",
    "text/latex",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/plain",
]


class ParameterError(Exception):
    """A parameter the notebook does not declare, or a notebook without a parameters cell."""


def parameters_cell(nb: Any) -> int:
    """Index of the cell tagged ``parameters``."""
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    raise ParameterError("no cell tagged 'parameters'")


def parameter_names(nb: Any) -> list[str]:
    """The names the parameters cell assigns, in order."""
    tree = ast.parse(nb.cells[parameters_cell(nb)].source)
    return [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    ]


def inject(nb: Any, parameters: dict[str, Any]) -> Any:
    """A copy of ``nb`` with a cell tagged ``injected-parameters`` after its parameters cell (papermill's
    convention); every name must be one the parameters cell assigns."""
    names = parameter_names(nb)
    for name in parameters:
        if name not in names:
            raise ParameterError(f"-p {name}: not a parameter of this notebook (it has {', '.join(names)})")
    nb = copy.deepcopy(nb)
    source = "# Injected parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(parameters_cell(nb) + 1, cell)
    return nb


def first_error(nb: Any) -> dict[str, Any] | None:
    """The first error output of an executed notebook: {"cell": index, "ename", "evalue", "traceback"}, or the
    cell that timed out or whose kernel died."""
    if "execution_failure" in nb.metadata:
        return dict(nb.metadata["execution_failure"])
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return {"cell": index, **{k: output.get(k) for k in ("ename", "evalue", "traceback")}}
    return None


def execute(path: Path, parameters: dict[str, Any], timeout: float = 1800) -> Any:
    """Run the notebook at ``path`` with ``parameters`` in a fresh python3 kernel whose working directory is
    the notebook's own (as in Jupyter); returns the executed notebook. Execution stops at the first failing
    cell (see ``first_error``)."""
    nb = inject(nbformat.read(path, as_version=4), parameters)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,  # closed progress bars: nothing to show on a static page
    )
    try:
        client.execute()
    except CellExecutionError:
        pass  # recorded in the cell's outputs: first_error(nb)
    except (CellTimeoutError, DeadKernelError) as err:  # nothing in the outputs: say which cell
        started = [
            i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is not None
        ]
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        nb.metadata["execution_failure"] = {
            "cell": started[-1] if started else None,  # the last cell that started
            "ename": type(err).__name__,
            "evalue": message,
            "traceback": [f"{type(err).__name__}: {message}"],
        }
    return nb


def without_progress_bars(nb: Any) -> Any:
    """A copy without the outputs of per-epoch progress widgets (transient in Jupyter, empty on a page)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    return nb


def write_html(nb: Any, path: Path) -> Path:
    """The executed notebook as one HTML page that needs no network, its figures embedded as data URIs."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter  # why here: seconds to import, and only pages need it
    from traitlets.config import Config

    exporter = HTMLExporter(
        config=Config({"NbConvertBase": {"display_data_priority": DATA_PRIORITY}}),
        embed_images=True,
        extra_loaders=[DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
        template_file="offline.html.j2",
    )
    body, _ = exporter.from_notebook_node(without_progress_bars(nb))
    path.write_text(body, encoding="utf-8")
    return path


def run(
    path: Path, out: Path, parameters: dict[str, Any], timeout: float
) -> tuple[Any, dict[str, Any] | None]:
    """Execute one notebook into ``out``: its runs in out/NAME/, the executed copy out/NAME.ipynb and its page
    out/NAME.html (both without the closed progress bars). Returns (executed notebook, its first error)."""
    name = path.stem
    started = time.perf_counter()
    nb = execute(path, {**parameters, "out": str((out / name).resolve())}, timeout)
    seconds = time.perf_counter() - started
    nbformat.write(without_progress_bars(nb), out / f"{name}.ipynb")
    write_html(nb, out / f"{name}.html")
    error = first_error(nb)
    status = "failed" if error else "done"
    print(f"{name}: {status} in {seconds:.0f} s -> {out / name}.html", flush=True)
    if error:
        print("\n".join(error["traceback"] or [f"{error['ename']}: {error['evalue']}"]), file=sys.stderr)
    return nb, error


def parse_parameter(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise ParameterError(f"-p {text}: expected NAME=VALUE, e.g. -p seed=1")
    return name.strip(), yaml.safe_load(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="execute.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: every part*.ipynb)")
    parser.add_argument("--quick", action="store_true", help="budgets of seconds (quick=True)")
    parser.add_argument("-p", dest="parameters", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, help="output directory (default: runs/notebooks-<time>)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)
    out = args.out or Path("runs") / f"notebooks-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        parameters = dict(parse_parameter(p) for p in args.parameters)
        if args.quick:
            parameters["quick"] = True
        paths = [p if p.exists() else HERE / p for p in args.notebooks] or NOTEBOOKS
        for path in paths:
            inject(nbformat.read(path, as_version=4), parameters)  # every -p known, before anything runs
    except (ParameterError, OSError) as err:
        print(f"execute.py: error: {err}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    failed = [path.stem for path in paths if run(path, out, parameters, args.timeout)[1]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
