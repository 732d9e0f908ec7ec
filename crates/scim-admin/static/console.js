// scimd console: progressive enhancement only. Every form also works (and
// is validated) on the server.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Timestamps: the server writes UTC (the exact value stays in the
  // title, shown on hover); show them in the browser's time zone.
  document.querySelectorAll("time[datetime]").forEach((t) => {
    // Microseconds are trimmed to what Date parses everywhere.
    const iso = t.dateTime.replace(/(\.\d{3})\d+/, "$1");
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return;
    t.textContent = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    t.title = t.dateTime + " (UTC)";
  });

  // User Synchronization: Enable stays disabled until SAML sign-in is
  // configured and every caution is ticked; the reason is shown.
  const form = document.getElementById("enable-form");
  if (form) {
    const button = document.getElementById("enable-sync");
    const reason = document.getElementById("enable-reason");
    const boxes = Array.from(form.querySelectorAll('input[name="caution"]'));
    const samlOk = form.dataset.samlConfigured === "true";
    const update = () => {
      const left = boxes.filter((b) => !b.checked).length;
      if (!samlOk) {
        button.disabled = true;
        reason.textContent = "Configure SAML sign-in first: synchronization needs it.";
      } else if (left > 0) {
        button.disabled = true;
        reason.textContent = left === 1
          ? "Tick the last caution to enable synchronization."
          : `Tick every caution to enable synchronization (${left} left).`;
      } else {
        button.disabled = false;
        reason.textContent = "All cautions accepted.";
      }
    };
    boxes.forEach((b) => b.addEventListener("change", update));
    update();
  }

  // Copy a secret shown once.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      const status = document.getElementById("copy-status");
      input.select();
      let ok = false;
      try {
        await navigator.clipboard.writeText(input.value);
        ok = true;
      } catch (_) {
        // Clipboard API unavailable (plain http): fall back to the
        // selection, which the legacy command copies.
        ok = document.execCommand && document.execCommand("copy");
      }
      if (status) status.textContent = ok ? "Copied." : "Press Ctrl+C to copy the selected secret.";
    });
  });

  // Confirm destructive forms.
  document.querySelectorAll("form[data-confirm]").forEach((f) => {
    f.addEventListener("submit", (e) => {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });
});
