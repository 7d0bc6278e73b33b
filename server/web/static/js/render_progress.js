// The render progress page, live: follows /api/v1/renders/{id}/events (the sign-in cookie
// authenticates the socket), reconnects with last_event_id, and shows the video when done.
// Without this script the page still shows the state it was served with and a refresh link.
(function () {
  "use strict";

  const root = document.getElementById("render");
  if (!root || !("WebSocket" in window)) return;

  const renderId = root.dataset.renderId;
  const FINAL = new Set(["succeeded", "failed", "cancelled", "dead"]);
  const FAILED = new Set(["failed", "cancelled", "dead"]);
  const STAGES = {
    preparing: "Reading the song and preparing the audio",
    rendering: "Drawing and encoding the frames",
    joining: "Joining the video and its sound",
    thumbnail: "Making the thumbnail",
    finalizing: "Finishing up",
  };
  const STATUSES = {
    queued: "Waiting for a worker",
    running: "Rendering",
    succeeded: "Done",
    failed: "Failed",
    cancelled: "Cancelled",
    dead: "Failed",
  };
  // Reconnect soon after a blip, then back off so a long outage does not hammer the server.
  const RETRY_MS = [500, 1000, 2000, 4000, 8000, 15000];

  let lastEventId = null;
  let retries = 0;
  let ended = FINAL.has(root.dataset.status);

  function field(name) {
    return root.querySelector('[data-field="' + name + '"]');
  }

  function setText(name, text) {
    const el = field(name);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function etaText(seconds) {
    if (seconds === null || seconds === undefined || seconds < 0) return "";
    if (seconds < 60) return "less than a minute left";
    const minutes = Math.ceil(seconds / 60);
    if (minutes < 90) return "about " + minutes + " min left";
    return "about " + (minutes / 60).toFixed(1) + " h left";
  }

  function sizeText(bytes) {
    if (!bytes) return "";
    if (bytes < 1048576) return Math.max(1, Math.round(bytes / 1024)) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  function durationText(seconds) {
    if (!seconds) return "";
    const whole = Math.round(seconds);
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  function setStatus(status) {
    root.dataset.status = status;
    for (const name of Object.keys(STATUSES)) root.classList.toggle("state-" + name, name === status);
  }

  function show(event) {
    if (!event || event.type === "ping" || event.type === "log" || !event.status) return;
    const status = event.status;
    setStatus(status);
    const label = status === "running" && STAGES[event.stage] ? STAGES[event.stage] : STATUSES[status];
    if (label) setText("label", label);
    if (typeof event.percent === "number") {
      const percent = status === "succeeded" ? 100 : Math.round(event.percent);
      const bar = document.getElementById("render-progress");
      bar.value = percent;
      bar.textContent = percent + "%";
      setText("percent", percent + "%");
    }
    setText("eta", status === "running" ? etaText(event.eta_seconds) : "");
    if (FAILED.has(status)) {
      const message = (event.error && event.error.message) || event.message || "";
      const box = field("error");
      box.textContent = message || "This render did not finish.";
      box.hidden = false;
      field("retry").hidden = false;
    }
    if (FINAL.has(status)) finish(status);
  }

  function finish(status) {
    ended = true;
    const cancel = field("cancel");
    if (cancel) cancel.hidden = true;
    const refresh = field("refresh");
    if (refresh) refresh.hidden = true;
    setText("live", status === "succeeded" ? "Finished just now." : "This render has ended.");
    if (status === "succeeded") showVideo();
  }

  // The finished render's links are the API's: each redirects to a fresh signed file link.
  function showVideo() {
    fetch("/api/v1/renders/" + renderId, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (render) {
        const links = render.links || {};
        if (!links.download) return;
        const box = field("video");
        const video = box.querySelector("video");
        if (links.thumbnail) video.poster = links.thumbnail;
        video.src = links.download;
        field("download").href = links.download;
        const output = render.output || {};
        const parts = [durationText(output.duration), sizeText(output.bytes)];
        if (output.width) parts.push(output.width + "×" + output.height);
        setText("output", parts.filter(Boolean).join(" · "));
        box.hidden = false;
      })
      .catch(function () {
        setText("live", "Finished. Refresh the page to play the video.");
      });
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let url = scheme + location.host + "/api/v1/renders/" + renderId + "/events";
    if (lastEventId) url += "?last_event_id=" + encodeURIComponent(lastEventId);
    const socket = new WebSocket(url);
    socket.onopen = function () {
      retries = 0;
      if (!ended) setText("live", "Updating live.");
    };
    socket.onmessage = function (message) {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (event.id) {
        lastEventId = event.id;
        root.dataset.lastEventId = event.id; // where a reconnect resumes (handy when debugging)
      }
      show(event);
    };
    socket.onclose = function (close) {
      if (ended || close.code === 1000) return;
      if (close.code === 4401) {
        setText("live", "Your sign-in ended; sign in again to follow this render.");
        return;
      }
      if (close.code === 4404) {
        setText("live", "This render is no longer yours to follow.");
        return;
      }
      const delay = RETRY_MS[Math.min(retries, RETRY_MS.length - 1)];
      retries += 1;
      setText("live", "Connection lost; reconnecting…");
      setTimeout(connect, delay);
    };
  }

  if (!ended) connect();
})();
