"""The demo's emotion readout: which VAD each line is performed with, shown as a label, numbers and a small
valence-arousal plot (HTML + inline SVG, so it needs no plotting library and renders without network).

`plan_emotions(lines, override)` decides the emotion of every line the same way the render does:

- one line: the pipeline reads each sentence's emotion itself; the readout shows each sentence and the
  line's length-weighted mean (as avatar.emotion's analyze_lines);
- several lines (a dialogue): each line's mood carries over from the previous one through
  avatar.emotion.dynamics.Dialogue (one character, average personality) and the line is performed with it;
- an override (preset or sliders) is used as is for every line: the user asked for exactly that emotion.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from avatar.emotion.labels import EKMAN_LABELS, LABEL_VAD, label_for
from avatar.types import VAD, SentenceEmotion

#: Colour per label (colour-blind-safe Okabe-Ito palette); finer labels share their nearest Ekman colour.
LABEL_COLOURS: dict[str, str] = {
    "neutral": "#7f7f7f", "happy": "#e69f00", "sad": "#0072b2", "angry": "#d55e00", "fearful": "#cc79a7",
    "disgusted": "#009e73", "surprised": "#56b4e9",
}


@dataclass(frozen=True)
class LineEmotion:
    """The emotion one line is performed with, and the per-sentence readings behind it."""

    text: str
    vad: VAD
    label: str
    confidence: float
    source: str  # "text", "dialogue", "override", or "neutral" (a recording with no words and no override)
    sentences: tuple[SentenceEmotion, ...] = field(default=())
    #: The model's category probabilities and intensity for the line's text (length-weighted over its sentences).
    categories: dict[str, float] | None = None
    intensity: float | None = None


def _read_as(sentences: list[SentenceEmotion]) -> tuple[dict[str, float] | None, float | None]:
    """Length-weighted category probabilities and intensity of a line's sentences (None when not model-read)."""
    if not sentences or any(s.categories is None or s.intensity is None for s in sentences):
        return None, None
    w = np.array([max(1, len(s.text)) for s in sentences], dtype=np.float64)
    w /= w.sum()
    cats = {c: float(sum(wi * s.categories[c] for wi, s in zip(w, sentences))) for c in sentences[0].categories}
    return cats, float(sum(wi * s.intensity for wi, s in zip(w, sentences)))


def _weighted(sentences: list[SentenceEmotion]) -> VAD:
    """Length-weighted mean VAD of a line's sentences (the same weighting as analyze_lines)."""
    if len(sentences) == 1:
        return sentences[0].vad
    w = np.array([max(1, len(s.text)) for s in sentences], dtype=np.float64)
    arr = np.stack([s.vad.as_array() for s in sentences]).astype(np.float64)
    return VAD.clipped(*(w[:, None] * arr).sum(0) / w.sum())


def plan_emotions(lines: list[str], override: VAD | None = None,
                  analyze: Callable[[str], list[SentenceEmotion]] | None = None) -> list[LineEmotion]:
    """The VAD each line is performed with (see the module docstring); `analyze` defaults to the shipped model."""
    if analyze is None:
        from avatar.emotion import analyze as analyze_default

        analyze = analyze_default
    if override is not None:
        label, conf = label_for(override)
        return [LineEmotion(text=line, vad=override, label=label, confidence=conf, source="override")
                for line in lines]
    readings = [analyze(line) for line in lines]
    if len(lines) == 1:
        vad = _weighted(readings[0])
        cats, inten = _read_as(readings[0])
        if cats is not None:  # the model's category, and the VAD made to agree with it (as for each sentence)
            from avatar.emotion.labels import consistent_vad

            label = max(cats, key=cats.__getitem__)
            # each sentence's confidence is its top probability times its readability: keep that factor
            w = np.array([max(1, len(x.text)) for x in readings[0]], dtype=np.float64)
            readable = float(np.dot(w / w.sum(), [x.confidence / max(x.categories[x.label], 1e-9) for x in readings[0]]))
            conf = min(1.0, cats[label] * readable)
            vad = consistent_vad(vad, label, cats)
        else:
            label, conf = label_for(vad)
        return [LineEmotion(text=lines[0], vad=vad, label=label, confidence=conf, source="text",
                            sentences=tuple(readings[0]), categories=cats, intensity=inten)]
    from avatar.emotion.dynamics import Dialogue

    dialogue = Dialogue(analyze=lambda text: _weighted(analyze(text)))
    out = []
    for line, reading in zip(lines, readings):
        # the line's own reading is the stimulus (already computed, so passed in rather than read again)
        vad = dialogue.say("avatar", line, override=_weighted(reading))
        label, conf = label_for(vad)  # the mood's label: the performed VAD carries over from earlier lines
        cats, inten = _read_as(reading)
        out.append(LineEmotion(text=line, vad=vad, label=label, confidence=conf, source="dialogue",
                               sentences=tuple(reading), categories=cats, intensity=inten))
    return out


def _colour(label: str) -> str:
    if label in LABEL_COLOURS:
        return LABEL_COLOURS[label]
    nearest, _ = label_for(LABEL_VAD[label]) if label in LABEL_VAD else ("neutral", 0.0)
    return LABEL_COLOURS.get(nearest, "#7f7f7f")


_LABEL_BELOW = {"fearful", "disgusted", "sad"}


def va_plot_svg(points: list[tuple[VAD, str]], size: int = 200, mean: VAD | None = None) -> str:
    """An SVG valence (x) / arousal (y) plane: label prototypes faint, `points` numbered in order, `mean` a ring."""
    pad = 18
    inner = size - 2 * pad

    def xy(v: VAD) -> tuple[float, float]:
        return pad + (v.valence + 1) / 2 * inner, pad + (1 - (v.arousal + 1) / 2) * inner

    c = size / 2
    parts = [
        f'<svg class="va-plot" xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" role="img" aria-label="valence-arousal plot">',
        f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="none" stroke="#bbb"/>',
        f'<line x1="{pad}" y1="{c}" x2="{size - pad}" y2="{c}" stroke="#ddd"/>',
        f'<line x1="{c}" y1="{pad}" x2="{c}" y2="{size - pad}" stroke="#ddd"/>',
        f'<text x="{size - pad}" y="{size - 4}" font-size="10" text-anchor="end" fill="#888">valence +</text>',
        f'<text x="{pad}" y="{size - 4}" font-size="10" fill="#888">−</text>',
        f'<text x="4" y="{pad - 6}" font-size="10" fill="#888">arousal +</text>',
    ]
    for name in EKMAN_LABELS[1:]:
        x, y = xy(LABEL_VAD[name])
        dy = 11 if name in _LABEL_BELOW else -5  # angry and fearful sit close together: one label above, one below
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{LABEL_COLOURS[name]}" opacity="0.4"/>'
                     f'<text x="{x:.1f}" y="{y + dy:.1f}" font-size="8" text-anchor="middle" fill="#999">{name}</text>')
    coords = [xy(v) for v, _ in points]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#555" stroke-width="1" stroke-dasharray="3 2"/>')
    for i, ((x, y), (_, label)) in enumerate(zip(coords, points)):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{_colour(label)}" stroke="#222"/>')
        if len(coords) > 1:
            parts.append(f'<text x="{x:.1f}" y="{y + 3:.1f}" font-size="8" text-anchor="middle" '
                         f'fill="#fff">{i + 1}</text>')
    if mean is not None:
        x, y = xy(mean)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="none" stroke="#222" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def _vad_cells(v: VAD) -> str:
    return "".join(f"<td>{x:+.2f}</td>" for x in (v.valence, v.arousal, v.dominance))


def readout_html(plan: list[LineEmotion]) -> str:
    """The readout: headline label + VAD, a table per line (or per sentence for one line), and the VA plot."""
    if not plan:
        return '<div class="emo-readout emo-empty">Type a line and press Perform to see its emotion.</div>'
    head = plan[-1] if len(plan) > 1 else plan[0]
    how = {"text": "read from the text", "dialogue": "mood carried over across the dialogue",
           "override": "set by you", "neutral": "neutral: a recording without its words"}[head.source]
    # rows of the table: the sentences of one line, the lines of a dialogue, or none for a one-sentence line
    rows: list[tuple[str, str, float, VAD, float | None]] = []
    title = ""
    if len(plan) == 1 and len(plan[0].sentences) > 1:
        title = "sentence"
        rows = [(s.text, s.label, s.confidence, s.vad, s.intensity) for s in plan[0].sentences]
    elif len(plan) > 1:
        title = "line"
        rows = [(p.text, p.label, p.confidence, p.vad, p.intensity) for p in plan]
    table = ""
    if rows:
        body = "".join(
            f'<tr><td class="emo-n">{i + 1}</td>'
            f'<td class="emo-text" title="{html.escape(t)}">{html.escape(_short(t))}</td>'
            f'<td><span class="emo-dot" style="background:{_colour(lab)}"></span>{html.escape(lab)}</td>'
            f"<td>{conf:.0%}</td><td>{'' if inten is None else f'{inten:.2f}'}</td>{_vad_cells(v)}</tr>"
            for i, (t, lab, conf, v, inten) in enumerate(rows))
        table = (f'<table class="emo-table"><thead><tr><th>#</th><th>{title}</th><th>label</th><th>conf.</th>'
                 f"<th>int.</th><th>V</th><th>A</th><th>D</th></tr></thead><tbody>{body}</tbody></table>")
    # the plot numbers the same points as the table: sentences of one line, or the lines of a dialogue
    points = [(v, lab) for _, lab, _, v, _ in rows] if rows else [(p.vad, p.label) for p in plan]
    mean = plan[0].vad if len(plan) == 1 and len(rows) > 1 else None
    if mean is not None:
        how = "whole line (ring); each sentence is performed with its own emotion"
    v = head.vad
    headline = (
        f'<div class="emo-head"><span class="emo-label" style="border-color:{_colour(head.label)}">'
        f"{html.escape(head.label)}</span> <span class=\"emo-conf\">{head.confidence:.0%}</span>"
        f'<div class="emo-vad">valence <b>{v.valence:+.2f}</b> · arousal <b>{v.arousal:+.2f}</b> · '
        f"dominance <b>{v.dominance:+.2f}</b></div>"
        f"{_categories_html(head)}"
        f'<div class="emo-how">{"last line: " if len(plan) > 1 else ""}{how}</div></div>'
    )
    return (f'<div class="emo-readout"><div class="emo-top">{headline}{va_plot_svg(points, mean=mean)}</div>'
            f"{table}</div>")


def _categories_html(line: LineEmotion) -> str:
    """The text's top three categories with their probabilities, and its intensity (when a model read it)."""
    if line.categories is None:
        return ""
    top = sorted(line.categories.items(), key=lambda kv: -kv[1])[:3]
    cats = " · ".join(f'<span class="emo-dot" style="background:{_colour(c)}"></span>{html.escape(c)} {p:.0%}'
                      for c, p in top)
    inten = "" if line.intensity is None else f" · intensity <b>{line.intensity:.2f}</b>"
    read = "text reads as " if line.source == "dialogue" else ""
    return f'<div class="emo-cats">{read}{cats}{inten}</div>'


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


#: CSS for the readout (passed to the app's launch).
READOUT_CSS = """
.emo-readout { font-size: 14px; }
.emo-top { display: flex; gap: 16px; align-items: center; justify-content: space-between; flex-wrap: wrap; }
.emo-head { flex: 1 1 180px; min-width: 0; }
.emo-label { font-size: 22px; font-weight: 600; border-left: 6px solid; padding-left: 8px; }
.emo-conf { color: #888; margin-left: 4px; }
.emo-vad { margin-top: 8px; }
.emo-cats { margin-top: 4px; font-size: 12px; }
.emo-how { margin-top: 4px; color: #888; font-size: 12px; }
#readout .emo-table { width: 100%; margin-top: 8px; border-collapse: collapse; font-size: 12px;
  border: none !important; }
#readout .emo-table tr { border: none; }
#readout .emo-table th, #readout .emo-table td { padding: 3px 6px; text-align: left; border: none;
  border-bottom: 1px solid var(--border-color-primary, #e5e5e5); }
#readout .emo-table th { font-weight: 600; color: var(--body-text-color-subdued, #888); }
.emo-text { max-width: 260px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.emo-n { color: #888; }
.emo-dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 5px; }
.emo-empty { color: #888; padding: 12px 0; }
"""
