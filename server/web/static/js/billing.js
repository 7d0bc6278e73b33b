// The pages Stripe Checkout returns to: the plan (or the card) changes only when Stripe's
// webhook has been processed, which is usually seconds after the redirect. Until then the
// page says so; this script asks the API now and then and tells the user when it landed.
(function () {
  "use strict";

  const root = document.getElementById("billing-return");
  if (!root || !window.fetch) return;
  const awaitTier = root.dataset.awaitTier;
  const awaitCards = root.dataset.awaitCards;
  if (!awaitTier && awaitCards === undefined) return;

  // Quick at first (the webhook usually lands within seconds), then slower; stop after
  // about five minutes and leave the refresh link to the user.
  const DELAYS_MS = [1000, 1000, 2000, 2000, 3000, 5000, 5000, 10000];
  const GIVE_UP_MS = 5 * 60 * 1000;
  const started = Date.now();
  let tries = 0;

  function field(name) {
    return root.querySelector('[data-field="' + name + '"]');
  }

  function landed(heading, message) {
    root.classList.remove("pending");
    root.classList.add("success");
    field("heading").textContent = heading;
    field("message").textContent = message;
    const refresh = field("refresh");
    if (refresh) refresh.hidden = true;
    document.title = heading + " · Notefall";
  }

  function check() {
    const url = awaitTier ? "/api/v1/billing" : "/api/v1/billing/payment-methods";
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        if (awaitTier && body.tier === awaitTier) {
          const title = root.dataset.awaitTitle || awaitTier;
          landed("You are on " + title, "Thank you! Everything " + title + " includes is yours now.");
          const badge = document.querySelector(".plan-badge");
          if (badge) {
            badge.textContent = title;
            badge.className = "plan-badge plan-" + awaitTier;
          }
          return true;
        }
        if (!awaitTier && body.items.length > Number(awaitCards)) {
          const card = body.items[body.items.length - 1];
          const brand = card.brand ? card.brand.charAt(0).toUpperCase() + card.brand.slice(1) : "Card";
          landed("Your card is saved", brand + " ending " + card.last4 + " is on your account.");
          return true;
        }
        return false;
      })
      .catch(function () {
        return false;
      });
  }

  function schedule() {
    if (Date.now() - started > GIVE_UP_MS) return;
    const delay = DELAYS_MS[Math.min(tries, DELAYS_MS.length - 1)];
    tries += 1;
    setTimeout(function () {
      check().then(function (done) {
        if (!done) schedule();
      });
    }, delay);
  }

  schedule();
})();
