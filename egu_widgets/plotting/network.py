"""The network diagram: the engine's two streams, layer by layer, with the shared layers between.

The boxes and their order come from tracing the torch model (:mod:`egu_widgets.figure_data.network`),
so the drawing always matches the network the engine trains.
"""

from __future__ import annotations

from typing import Any

from ..figure_data import NetGraph, network_graph, network_rows
from ._base import new_figure

__all__ = ["network_figure"]


def network_figure(model: Any, title: str | None = None, **trace_options: Any):
    """Draw the engine's two-stream network as traced by :func:`egu_widgets.figure_data.network_graph`.

    The endmember stream runs down the left, the unmixing stream down the right, and the layers
    both streams call (the same module objects) sit in the middle. ``model`` is an engine network
    (traced here, with ``trace_options`` passed to the tracer) or an already traced
    :class:`~egu_widgets.figure_data.NetGraph`. ``title`` replaces the heading ``EGU-Net-<variant>``.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    g = model if isinstance(model, NetGraph) else network_graph(model, **trace_options)
    rows = network_rows(g.order, g.boxes)
    n_rows = max(rows.values()) + 1 if rows else 1
    col_x = {"endmember": 0.0, "shared": 1.0, "unmixing": 2.0}
    colours = {"endmember": "#dbe9f6", "shared": "#fde2c4", "unmixing": "#dff2dd"}
    row_h = 0.9
    fig = new_figure(11.5, 1.0 + row_h * (n_rows + 2) * 0.95)
    ax = fig.add_subplot()
    ax.set_xlim(-0.62, 2.62)
    ax.set_ylim(-(n_rows + 1.6) * row_h, 1.0 * row_h)
    ax.axis("off")
    box_w, box_h = 1.0, 0.7 * row_h

    def where(key: str) -> tuple[float, float]:
        box = g.boxes[key]
        col = "shared" if box.shared else next(iter(box.streams))
        return col_x[col], -(rows[key] + 1) * row_h

    def draw_box(x, y, lines, colour, bold=False):
        ax.add_patch(
            FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.02,rounding_size=0.05",
                fc=colour,
                ec="#444",
                lw=1.0,
            )
        )
        lines = [ln for ln in lines if ln]
        step = box_h / (len(lines) + 0.6)
        for i, text in enumerate(lines):
            yy = y + box_h / 2 - step * (i + 0.8)
            if i == 0:
                ax.text(x, yy, text, ha="center", va="center", fontsize=8, weight="bold" if bold else "normal")
            elif i == len(lines) - 1 and not bold:
                ax.text(x, yy, text, ha="center", va="center", fontsize=5.5, color="#555")
            elif text.endswith(("convolution",)) or " stream: " in text:
                ax.text(x, yy, text, ha="center", va="center", fontsize=6.5, style="italic", color="#7b341e")
            else:
                ax.text(x, yy, text, ha="center", va="center", fontsize=7)

    def arrow(p0, p1, colour):
        ax.add_patch(
            FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=9, color=colour, lw=1.0, shrinkA=0, shrinkB=0)
        )

    stream_colour = {"endmember": "#2b6cb0", "unmixing": "#2f855a"}
    for stream in ("endmember", "unmixing"):
        keys = g.order.get(stream, [])
        if not keys:
            continue
        x_in = col_x[stream]
        top = (x_in, 0.0)
        draw_box(*top, [g.inputs[stream], f"{stream} stream input"], colours[stream], bold=True)
        prev = (top[0], top[1] - box_h / 2)
        for key in keys:
            x, y = where(key)
            arrow(
                prev,
                (
                    x + (0.12 if stream == "unmixing" and g.boxes[key].shared else -0.12 if g.boxes[key].shared else 0),
                    y + box_h / 2,
                ),
                stream_colour[stream],
            )
            prev = (
                x + (0.12 if stream == "unmixing" and g.boxes[key].shared else -0.12 if g.boxes[key].shared else 0),
                y - box_h / 2,
            )
        bottom = (x_in, -(n_rows + 1) * row_h)
        arrow(prev, (bottom[0], bottom[1] + box_h / 2), stream_colour[stream])
        draw_box(
            *bottom,
            [g.outputs[stream].split(" → ")[0], "→ " + g.outputs[stream].split(" → ")[1]],
            colours[stream],
            bold=True,
        )
    for key, box in g.boxes.items():
        x, y = where(key)
        colour = colours["shared" if box.shared else next(iter(box.streams))]
        draw_box(x, y, box.lines, colour)
    ax.text(
        col_x["endmember"],
        0.62 * row_h,
        "endmember stream",
        ha="center",
        fontsize=10,
        color=stream_colour["endmember"],
        weight="bold",
    )
    ax.text(
        col_x["shared"], 0.62 * row_h, "shared (same modules)", ha="center", fontsize=10, color="#b7791f", weight="bold"
    )
    ax.text(
        col_x["unmixing"],
        0.62 * row_h,
        "unmixing stream",
        ha="center",
        fontsize=10,
        color=stream_colour["unmixing"],
        weight="bold",
    )
    heading = title or f"EGU-Net-{g.variant}"
    fig.suptitle(
        f"{heading}: {g.n_params:,} parameters, {g.n_shared_params:,} in layers shared by both streams "
        f"(traced from the torch model)",
        fontsize=10,
    )
    return fig
