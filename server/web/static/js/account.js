// Account pages: a preview of the avatar before it is uploaded, and a data export that
// shows its download link once ready. Both are extras: every form works without them.
"use strict";

(function () {
  const ACCEPTED = ["image/png", "image/jpeg", "image/webp", "image/gif"];

  function avatarPreview() {
    const input = document.getElementById("avatar-file");
    const preview = document.getElementById("avatar-preview");
    const current = document.getElementById("avatar-current");
    const check = document.getElementById("avatar-check");
    if (!input || !preview || !check) return;
    const maxBytes = Number(input.dataset.maxBytes || 0);
    const megabytes = Math.round(maxBytes / (1024 * 1024));

    function refuse(message) {
      check.textContent = message;
      check.hidden = false;
      input.value = "";
      input.setAttribute("aria-invalid", "true");
      preview.hidden = true;
      preview.removeAttribute("src");
      if (current) current.hidden = false;
    }

    input.addEventListener("change", function () {
      check.hidden = true;
      input.removeAttribute("aria-invalid");
      const file = input.files && input.files[0];
      if (!file) return;
      // The server checks both again; this only saves a wasted upload.
      if (file.type && ACCEPTED.indexOf(file.type) === -1) {
        refuse("This file is not a PNG, JPEG, WebP or GIF picture; choose one of those.");
        return;
      }
      if (maxBytes && file.size > maxBytes) {
        refuse("This picture is larger than " + megabytes + " MB; choose a smaller one.");
        return;
      }
      // A data: URL, which the page's CSP allows for images (blob: it does not).
      const reader = new FileReader();
      reader.addEventListener("load", function () {
        preview.src = String(reader.result);
        preview.hidden = false;
        if (current) current.hidden = true;
      });
      reader.readAsDataURL(file);
    });
  }

  function exportStatus() {
    const box = document.getElementById("export-status");
    if (!box || box.dataset.status !== "pending") return;
    const url = "/api/v1/me/exports/" + encodeURIComponent(box.dataset.exportId || "");
    let delay = 2000;

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (body) {
          if (body.status !== "pending") {
            // The page itself shows every state (and the signed link) the same way; without
            // ?done=, which spoke of the request.
            window.location.assign("/account/data");
            return;
          }
          delay = 2000;
          window.setTimeout(poll, delay);
        })
        .catch(function () {
          // Offline or the server busy: ask less often; the refresh link still works.
          delay = Math.min(delay * 2, 30000);
          window.setTimeout(poll, delay);
        });
    }
    window.setTimeout(poll, delay);
  }

  avatarPreview();
  exportStatus();
})();
