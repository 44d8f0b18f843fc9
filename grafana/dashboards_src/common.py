"""What the three dashboards share: the datasource and hall variables, the panel kinds, the frame.

Every panel and target points at the `DS_PROMETHEUS` variable (default: the provisioned
datasource, uid `hallwatch-prometheus`), so an imported copy can pick another Prometheus.
Panels are laid out by hand (`pos` is x, y, w, h on Grafana's 24-column grid) and numbered in
the order they are given.

Every query goes through `pair_safe`: the two instances of an HA pair (deploy/ha) both compute
every hall's figures from the same events and both read the shared outbox, so each such series
is scraped twice, once per `instance`; `pair_safe` takes one of them (`max without (instance)`)
before any sum, count or comparison, so nothing is counted twice. With one instance it changes
nothing. What each instance does itself (events it ingested, notifications it sent,
reconnects) stays per instance and is summed as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Literal, TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash_builders
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

DATASOURCE_UID = "hallwatch-prometheus"
DS = dm.DataSourceRef(type_val="prometheus", uid="${DS_PROMETHEUS}")
SCHEMA_VERSION = 39  # Grafana 10.4's; the SDK's model says 36 unless told
GRAFANA_VERSION = "10.4.0"
HALL_QUERY = "label_values(hallwatch_hall_headcount, hall)"

Pos = tuple[int, int, int, int]  # x, y, w, h
Step = tuple[float | None, str]  # threshold value (None: the base), colour
Panel = stat.Panel | bargauge.Panel | timeseries.Panel | table.Panel
Unit = Literal["short", "s", "ops", "percentunit"]
P = TypeVar("P", stat.Panel, bargauge.Panel, timeseries.Panel, table.Panel)


# -- targets --------------------------------------------------------------------------------------

#: Series both instances of a pair report alike: each hall's figures (computed by both from the
#: same events) and the shared outbox's gauges.
PAIR_SERIES = frozenset(
    {
        "hallwatch_alerts_firing",
        "hallwatch_closing_overrun_seconds",
        "hallwatch_complaints_due_soon",
        "hallwatch_complaints_open",
        "hallwatch_complaints_overdue",
        "hallwatch_complaints_registered",
        "hallwatch_device_up",
        "hallwatch_estimate_mae_seconds",
        "hallwatch_estimated_wait_seconds",
        "hallwatch_hall_headcount",
        "hallwatch_hall_headcount_peak",
        "hallwatch_hall_last_event_timestamp_seconds",
        "hallwatch_outbox_depth",
        "hallwatch_outbox_oldest_pending_seconds",
        "hallwatch_queue_oldest_wait_seconds",
        "hallwatch_queue_waiting",
        "hallwatch_staffing_extra_windows",
        "hallwatch_system_state",
        "hallwatch_tickets_today",
        "hallwatch_wait_mean_seconds_today",
        "hallwatch_windows_emergency_open",
        "hallwatch_windows_open",
    }
)
_PAIR_SELECTOR = re.compile(
    r"(?<![\w:])(" + "|".join(sorted(PAIR_SERIES, key=len, reverse=True)) + r")(?![\w:])"
    r"(\{[^}]*\})?(?!\s*\[)"
)


def pair_safe(expr: str) -> str:
    """`expr` with each selector of a PAIR_SERIES metric taken once per pair:
    `m{...}` -> `max without (instance) (m{...})`."""
    return _PAIR_SELECTOR.sub(lambda m: f"max without (instance) ({m.group(0)})", expr)


def instant(expr: str, legend: str = "__auto") -> prom.Dataquery:
    """A query for the latest value (stats, bar gauges, tables)."""
    return prom.Dataquery().expr(pair_safe(expr)).legend_format(legend).instant().datasource(DS)


def series(expr: str, legend: str) -> prom.Dataquery:
    """A range query (time series)."""
    return prom.Dataquery().expr(pair_safe(expr)).legend_format(legend).range().datasource(DS)


def _with_targets(panel: P, targets: Sequence[prom.Dataquery]) -> P:
    for ref, target in zip("ABCDEFGH", targets, strict=False):
        panel.with_target(target.ref_id(ref))
    return panel


# -- field settings -------------------------------------------------------------------------------


def thresholds(*steps: Step) -> dash_builders.ThresholdsConfig:
    return (
        dash_builders.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value, color=color) for value, color in steps])
    )


def value_map(*entries: tuple[str, str, str]) -> dm.ValueMap:
    """A value mapping: (value, text, colour) in order."""
    return dm.ValueMap(
        options={
            value: dm.ValueMappingResult(text=text, color=color, index=i)
            for i, (value, text, color) in enumerate(entries)
        }
    )


def override(name: str, **properties: object) -> dash_builders.DashboardFieldConfigSourceOverrides:
    """An override for the field called `name`; a property `custom_x` stands for `custom.x`."""
    return (
        dash_builders.DashboardFieldConfigSourceOverrides()
        .matcher(dm.MatcherConfig(id_val="byName", options=name))
        .properties(
            [
                dm.DynamicConfigValue(id_val=key.replace("custom_", "custom."), value=value)
                for key, value in properties.items()
            ]
        )
    )


def _frame(panel: P, title: str, description: str, pos: Pos) -> P:
    x, y, w, h = pos
    return (
        panel.title(title)
        .description(description)
        .datasource(DS)
        .grid_pos(dm.GridPos(x=x, y=y, w=w, h=h))
    )


def _reduce_last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


# -- panel kinds ----------------------------------------------------------------------------------


def stat_panel(
    title: str,
    pos: Pos,
    targets: Sequence[prom.Dataquery],
    *,
    steps: Sequence[Step],
    value_size: int,
    description: str = "",
    unit: Unit = "short",
    decimals: int = 0,
    with_name: bool = False,
    mappings: Sequence[dm.ValueMap] = (),
    overrides: Sequence[dash_builders.DashboardFieldConfigSourceOverrides] = (),
) -> stat.Panel:
    """A big number on a coloured background, the last value of each series."""
    panel = (
        _frame(stat.Panel(), title, description, pos)
        .unit(unit)
        .decimals(decimals)
        .color_scheme(dash_builders.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds(*steps))
        .mappings(list(mappings))
        .overrides(list(overrides))
        .reduce_options(_reduce_last())
        .orientation(cm.VizOrientation.AUTO)
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME if with_name else cm.BigValueTextMode.VALUE)
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .justify_mode(cm.BigValueJustifyMode.CENTER)
        .wide_layout(True)
        .show_percent_change(False)
        .text(common_builders.VizTextDisplayOptions().title_size(28).value_size(value_size))
    )
    return _with_targets(panel, targets)


def bar_gauge(
    title: str,
    pos: Pos,
    targets: Sequence[prom.Dataquery],
    *,
    steps: Sequence[Step],
    description: str = "",
    unit: Unit = "short",
    max_value: float | None = None,
) -> bargauge.Panel:
    """Horizontal bars from 0, one per series, names on the left."""
    panel = (
        _frame(bargauge.Panel(), title, description, pos)
        .unit(unit)
        .decimals(0)
        .min(0)
        .color_scheme(dash_builders.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds(*steps))
        .mappings([])
        .overrides([])
        .reduce_options(_reduce_last())
        .orientation(cm.VizOrientation.HORIZONTAL)
        .display_mode(cm.BarGaugeDisplayMode.BASIC)
        .show_unfilled(True)
        .value_mode(cm.BarGaugeValueMode.COLOR)
        .name_placement(cm.BarGaugeNamePlacement.LEFT)
        .sizing(cm.BarGaugeSizing.AUTO)
        .min_viz_height(16)
        .min_viz_width(8)
        .max_viz_height(300)
        .text(common_builders.VizTextDisplayOptions().title_size(28).value_size(40))
    )
    if max_value is not None:
        panel.max(max_value)
    return _with_targets(panel, targets)


def time_series(
    title: str,
    pos: Pos,
    targets: Sequence[prom.Dataquery],
    *,
    unit: Unit,
    description: str = "",
    red_line: float | None = None,
    overrides: Sequence[dash_builders.DashboardFieldConfigSourceOverrides] = (),
) -> timeseries.Panel:
    """Thick lines from 0; `red_line` draws the plan's limit as a red line over a red area."""
    if red_line is None:
        steps: tuple[Step, ...] = ((None, "green"),)
        style = cm.GraphThresholdsStyleMode.OFF
    else:
        steps = ((None, "transparent"), (red_line, "red"))
        style = cm.GraphThresholdsStyleMode.LINE_AND_AREA
    panel = (
        _frame(timeseries.Panel(), title, description, pos)
        .unit(unit)
        .draw_style(cm.GraphDrawStyle.LINE)
        .line_width(3)
        .fill_opacity(10)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(True)
        .axis_soft_min(0)
        .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(style))
        .stacking(common_builders.StackingConfig().mode(cm.StackingMode.NONE).group("A"))
        .color_scheme(dash_builders.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC))
        .thresholds(thresholds(*steps))
        .mappings([])
        .overrides(list(overrides))
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs([])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(cm.TooltipDisplayMode.MULTI)
            .sort(cm.SortOrder.DESCENDING)
        )
    )
    return _with_targets(panel, targets)


def table_panel(
    title: str,
    pos: Pos,
    expr: str,
    *,
    columns: Mapping[str, str],
    hide: Sequence[str] = ("Time", "Value", "__name__", "instance", "job"),
    description: str = "",
    overrides: Sequence[dash_builders.DashboardFieldConfigSourceOverrides] = (),
) -> table.Panel:
    """One row per series of an instant query; `columns` renames labels (label -> heading)."""
    target = instant(expr).format(pm.PromQueryFormat.TABLE)
    organize = {
        "excludeByName": dict.fromkeys(hide, True),
        "renameByName": dict(columns),
    }
    panel = (
        _frame(table.Panel(), title, description, pos)
        .unit("short")
        .align(cm.FieldTextAlignment.AUTO)
        .mappings([])
        .thresholds(thresholds((None, "green")))
        .overrides(list(overrides))
        .show_header(True)
        .cell_height(cm.TableCellHeight.MD)
        .footer(common_builders.TableFooterOptions().show(False))
        .with_transformation(dm.DataTransformerConfig(id_val="organize", options=organize))
    )
    return _with_targets(panel, [target])


# -- the dashboard --------------------------------------------------------------------------------


def _datasource_variable() -> dash_builders.DatasourceVariable:
    current = dm.VariableOption(selected=True, text="hallwatch Prometheus", value=DATASOURCE_UID)
    return (
        dash_builders.DatasourceVariable("DS_PROMETHEUS")
        .label("数据源")
        .type("prometheus")
        .current(current)
        .hide(dm.VariableHide.DONT_HIDE)
        .regex("")
    )


def _hall_variable(multi: bool) -> dash_builders.QueryVariable:
    """The hall picker: one hall (the wall display) or any number, "All" by default."""
    var = (
        dash_builders.QueryVariable("hall")
        .label("大厅")
        .datasource(DS)
        .query(
            {
                "query": HALL_QUERY,
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
                "qryType": 1,
            }
        )
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .regex("")
        .hide(dm.VariableHide.DONT_HIDE)
        .multi(multi)
        .include_all(multi)
        .options([])
    )
    if multi:
        var.all_value(".*").current(
            dm.VariableOption(selected=True, text=["All"], value=["$__all"])
        )
    return var


def _builtin_annotations() -> dash_builders.AnnotationQuery:
    return (
        dash_builders.AnnotationQuery()
        .name("Annotations & Alerts")
        .built_in(1)
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
    )


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    tags: Sequence[str],
    refresh: str,
    time_from: str,
    hall: Literal["one", "many"] | None,
    panels: Sequence[Panel],
) -> dict[str, object]:
    """The dashboard as the JSON object Grafana loads: the shared frame around `panels`."""
    board = (
        dash_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(list(tags))
        .timezone("browser")
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .version(1)
        .refresh(refresh)
        .time(time_from, "now")
        .timepicker(dash_builders.TimePicker().refresh_intervals(["5s", "10s", "30s", "1m", "5m"]))
        .fiscal_year_start_month(0)
        .live_now(False)
        .week_start("")
        .annotation(_builtin_annotations())
        .link(
            dash_builders.DashboardLink("hallwatch")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["hallwatch"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(_datasource_variable())
    )
    if hall is not None:
        board.with_variable(_hall_variable(multi=hall == "many"))
    for number, panel in enumerate(panels, start=1):
        board.with_panel(panel.id(number))
    model = board.build()
    model.schema_version = SCHEMA_VERSION
    out: dict[str, object] = json.loads(json.dumps(model, cls=JSONEncoder))
    return _add_what_the_model_lacks(out)


def _add_what_the_model_lacks(out: dict[str, object]) -> dict[str, object]:
    """Two things the SDK's model has no field for: what an import needs (`__requires`), and a
    query variable's `definition` (the text Grafana lists it by in the dashboard settings)."""
    requires = [
        {"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_VERSION},
        {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
    ]
    templating = out["templating"]
    assert isinstance(templating, dict)
    for var in templating["list"]:
        if var["type"] == "query":
            var["definition"] = var["query"]["query"]
    return {"__requires": requires, **out}


def render(board: Mapping[str, object]) -> str:
    """The file's text: sorted keys, two-space indent, UTF-8 as is, a final newline."""
    return json.dumps(board, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
