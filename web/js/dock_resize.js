// The agent console's call strip, resizable from the keyboard (issue 18: "the call docked as a
// resizable strip"): a focusable separator under the strip (role="separator",
// aria-valuenow = the strip's height in px). ↑/↓ change the height by STEP px (Shift: ×3),
// Home/End go to the smallest/largest; a pointer can drag it too. The limits are the strip's
// own CSS ones (min-height, max-height as a share of the conversation column), read when used,
// so the CSS stays the one source of them (web/css/agent.css, docs/workspace.md).
export const STEP = 20;

export function keyboardResizer(dock, sep) {
  const bounds = () => {
    const cs = getComputedStyle(dock);
    const min = parseFloat(cs.minHeight) || 0;
    const pane = dock.parentElement.getBoundingClientRect().height;
    const maxPct = cs.maxHeight.endsWith("%") ? (parseFloat(cs.maxHeight) / 100) * pane : parseFloat(cs.maxHeight);
    return { min: Math.round(min), max: Math.round(Number.isFinite(maxPct) ? maxPct : pane) };
  };
  const sync = () => {
    const { min, max } = bounds();
    sep.setAttribute("aria-valuemin", String(min));
    sep.setAttribute("aria-valuemax", String(max));
    sep.setAttribute("aria-valuenow", String(Math.round(dock.getBoundingClientRect().height)));
  };
  const setHeight = (px) => {
    const { min, max } = bounds();
    dock.style.height = `${Math.round(Math.min(max, Math.max(min, px)))}px`;
    sync();
  };
  sep.addEventListener("keydown", (e) => {
    const cur = dock.getBoundingClientRect().height;
    const step = e.shiftKey ? STEP * 3 : STEP;
    const to = { ArrowDown: cur + step, ArrowUp: cur - step, Home: bounds().min, End: bounds().max }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    setHeight(to);
  });
  sep.addEventListener("pointerdown", (e) => {
    const y0 = e.clientY;
    const h0 = dock.getBoundingClientRect().height;
    sep.setPointerCapture(e.pointerId);
    const move = (ev) => setHeight(h0 + ev.clientY - y0);
    const up = () => { sep.removeEventListener("pointermove", move); sep.removeEventListener("pointerup", up); };
    sep.addEventListener("pointermove", move);
    sep.addEventListener("pointerup", up);
  });
  // the CSS resize handle, the strip appearing (a call) and window resizes change the height
  // and the limits: keep the values true. A ResizeObserver reads them after the frame's own
  // layout; reading them on each call change forced an extra layout of the whole console
  // per frame while a call set up (benchmarks/call_setup.py).
  const ro = new ResizeObserver(sync);
  ro.observe(dock);
  if (dock.parentElement) ro.observe(dock.parentElement);
  return { sync };
}
