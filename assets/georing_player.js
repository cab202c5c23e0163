// The GEO ring's frame player (app.views.georing.FramePlayer): frames made on the server are sent ahead, as the
// exact columns of the Bokeh image and stamp sources (deflated), and swapped into those sources here, locally
// (`setv(..., {sync: false})`: nothing goes back to the server), by a timer at the asked rate and on `<` / `>`.
// The server keeps the state: it is told which slot is shown (`slot`), the measured rate (`rate`), and, on Pause,
// the slot the animation stopped on (`stopped`). Every frame shown is logged (slot, time) in
// `window.fumaroleGeoPlayer.log` for the rate and for tests.

const NDARRAY = () => Bokeh.require("core/util/ndarray")

function newest(name) {
  let best = null
  for (const doc of Bokeh.documents) {
    for (const m of doc._all_models.values()) {
      if (m.name !== name || !m.data_source) continue
      const n = parseInt(String(m.id).replace(/\D/g, "")) || 0
      if (!best || n > best.n) best = {n, m}
    }
  }
  return best ? best.m : null
}

async function inflate(part) {
  const raw = Uint8Array.from(atob(part.b64), (c) => c.charCodeAt(0))
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("deflate"))
  const buffer = await new Response(stream).arrayBuffer()
  const image = NDARRAY().ndarray(buffer, {dtype: part.dtype, shape: part.shape})
  return {image: [image], x: [part.x], y: [part.y], dw: [part.dw], dh: [part.dh]}
}

export function render({model, el}) {
  const frames = new Map()  // "view|slot" -> {image, stamp}, in the order received (the server keeps the same)
  const state = window.fumaroleGeoPlayer = window.fumaroleGeoPlayer || {log: []}
  state.log = []
  let shown = model.slot
  let due = 0
  let running = false
  let lastReport = 0
  el.className = "georing-player"
  el.setAttribute("aria-hidden", "true")
  el.dataset.shown = shown || ""
  state.shown = shown
  state.frames = () => [...frames.keys()].filter((k) => k.startsWith(`${model.view}|`)).map((k) => k.split("|").pop())

  const key = (slot) => `${model.view}|${slot}`

  function show(slot, why) {
    const f = frames.get(key(slot))
    const image = newest("georing-frame")
    const stamp = newest("georing-stamp")
    if (!f || !image || !stamp) return false
    image.data_source.setv({data: {...image.data_source.data, ...f.image}}, {sync: false})
    stamp.data_source.setv({data: {...stamp.data_source.data, ...f.stamp}}, {sync: false})
    shown = slot
    el.dataset.shown = slot
    state.shown = slot
    state.log.push([slot, performance.now(), why])
    if (state.log.length > 1000) state.log.splice(0, state.log.length - 1000)
    return true
  }

  function next(slot, n) {  // the animation's next slot: the day's, looping, the failed ones skipped
    const order = model.order
    const skip = new Set(model.skip)
    let i = order.indexOf(slot)
    if (i < 0) return order.length ? order[0] : null
    for (let k = 0; k < order.length; k++) {
      i = (i + n + order.length) % order.length
      if (!skip.has(order[i])) return order[i]
    }
    return null
  }

  function measure() {
    const log = state.log.filter((e) => e[2] === "play").slice(-51)
    if (log.length < 3) return null
    return (log.length - 1) / ((log[log.length - 1][1] - log[0][1]) / 1000)
  }

  function tick(now) {
    if (!running) return
    const period = 1000 / model.fps
    if (now >= due) {
      const slot = next(shown, 1)
      if (slot !== null && show(slot, "play")) {
        due += period
        if (now - due > 2 * period) due = now + period  // far behind (a frame not there yet): no burst to catch up
        if (now - lastReport > 1000) {  // the server's slot list, title and URL follow once a second
          lastReport = now
          model.slot = slot
          const rate = measure()
          if (rate !== null) model.rate = Math.round(rate * 10) / 10
        }
      }
    }
    requestAnimationFrame(tick)
  }

  function play() {
    if (running || !model.playing) return
    running = true
    state.log = []
    due = performance.now() + 1000 / model.fps
    requestAnimationFrame(tick)
  }

  function pause() {  // always answered: the server waits for it ("Pausing…")
    running = false
    model.slot = shown
    model.stopped = `${shown} ${performance.now()}`
  }

  model.on("msg:custom", async (msg) => {
    if (msg.clear) {
      frames.clear()
      return
    }
    if (!msg.slot) return
    const f = {image: await inflate(msg.image), stamp: await inflate(msg.stamp)}
    frames.set(`${msg.view}|${msg.slot}`, f)
    while (frames.size > model.max_frames) frames.delete(frames.keys().next().value)
    if (msg.view === model.view && msg.slot === model.slot && shown !== msg.slot && !running) show(msg.slot, "sent")
  })

  model.on("slot", () => {
    if (!running && model.slot !== shown) {
      if (!show(model.slot, "state")) shown = model.slot  // not sent here: the server draws it
      el.dataset.shown = shown
      state.shown = shown
    }
  })
  model.on("view", () => {
    for (const k of [...frames.keys()]) if (!k.startsWith(`${model.view}|`)) frames.delete(k)
  })
  model.on("playing", () => (model.playing ? play() : pause()))
  model.on("fps", () => { due = performance.now() + 1000 / model.fps })

  // `<` and `>` (the stepper's buttons dispatch this event): the frame is swapped here at once when it was sent
  // ahead, and the server is asked to step (it moves the slot, the list, the title and the URL)
  const onStep = (event) => {
    const n = event.detail
    const i = model.order.indexOf(shown)
    state.clicks = [...(state.clicks || []).slice(-50), [n, performance.now()]]
    if (!running && i >= 0 && i + n >= 0 && i + n < model.order.length) show(model.order[i + n], "step")
    model.send_msg({step: n})
  }
  document.addEventListener("georing-step", onStep)
  model.on("remove", () => { running = false; document.removeEventListener("georing-step", onStep) })
  model.send_msg({ready: true})
  if (model.playing) play()
}
