// opsbot web UI: dialogs that repeat the typed value before submitting, filters that
// apply on change, and live job progress. Pages work without it (a form submits as
// typed, a filter with its button, a job page on reload).
(function () {
  "use strict";
  document.querySelectorAll("[data-dialog]").forEach(function (button) {
    button.addEventListener("click", function () {
      var dialog = document.getElementById(button.getAttribute("data-dialog"));
      if (!dialog || !dialog.showModal) { return; }
      var form = dialog.querySelector("form");
      if (form && form.hasAttribute("data-ask-before")) { reset(form); form.reset(); }
      dialog.showModal();
      var field = dialog.querySelector("input:not([type=hidden])");
      if (field) { field.focus(); field.select(); }
    });
  });
  document.querySelectorAll("dialog [data-close]").forEach(function (button) {
    button.addEventListener("click", function () { button.closest("dialog").close(); });
  });

  // A dialog with a value asks first: "将 web-01 的 CPU 改为 4?", then submits.
  function reset(form) {
    var ask = form.querySelector(".ask");
    var submit = form.querySelector("button[type=submit]");
    delete form.dataset.asked;
    if (ask) { ask.hidden = true; ask.textContent = ""; }
    if (submit && submit.dataset.label) { submit.textContent = submit.dataset.label; }
  }
  document.querySelectorAll("form[data-ask-before]").forEach(function (form) {
    var field = form.querySelector("input:not([type=hidden])");
    var submit = form.querySelector("button[type=submit]");
    submit.dataset.label = submit.textContent;
    field.addEventListener("input", function () { reset(form); });
    form.addEventListener("submit", function (event) {
      if (form.dataset.asked === field.value) { return; }
      event.preventDefault();
      var ask = form.querySelector(".ask");
      ask.textContent = form.getAttribute("data-ask-before") + field.value.trim() + form.getAttribute("data-ask-after");
      ask.hidden = false;
      form.dataset.asked = field.value;
      submit.textContent = "确认";
    });
  });

  // Filters apply as soon as one is chosen.
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Jobs still running (one on a job page, any number on the list) follow the job.
  var labels = { running: "进行中", succeeded: "成功", failed: "失败", interrupted: "已中断", cancelled: "已取消" };
  function follow(card) {
    var id = card.getAttribute("data-job");
    function set(cls, fn) { var el = card.querySelector("." + cls); if (el) { fn(el); } }
    function poll() {
      fetch("/api/v1/jobs/" + encodeURIComponent(id), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (job) {
          set("job-bar", function (el) { el.style.width = job.progress + "%"; });
          set("job-progress", function (el) { el.textContent = job.progress + "%"; });
          set("job-state", function (el) {
            el.textContent = labels[job.state] || job.state;
            el.className = "job-state state " + job.state;
          });
          set("job-message", function (el) { el.textContent = job.message; });
          if (job.state === "running") { setTimeout(poll, 1000); }
          else { set("job-cancel", function (el) { el.hidden = true; }); }
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 500);
  }
  document.querySelectorAll("[data-job]").forEach(function (card) {
    if (card.querySelector(".state.running")) { follow(card); }
  });

  // A release order's live log: server-sent events after the last line shown (the
  // browser resumes with Last-Event-ID by itself); `end` means the order is over, and
  // the order's page is loaded again to show how it ended (its own address: this page
  // may be the answer to a POST). Without EventSource: the 刷新 link.
  var log = document.querySelector("pre[data-log]");
  if (log && window.EventSource) {
    var status = document.getElementById("log-status");
    var source = new EventSource(log.getAttribute("data-log") + "?after=" + encodeURIComponent(log.getAttribute("data-after") || "0"));
    source.addEventListener("log", function (event) {
      var chunk = JSON.parse(event.data);
      var line = document.createElement("span");
      line.textContent = (chunk.host ? "[" + chunk.host + "] " : "") + chunk.text + "\n";
      var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.appendChild(line);
      if (atEnd) { log.scrollTop = log.scrollHeight; }
    });
    source.addEventListener("end", function () {
      source.close();
      if (status) { status.textContent = "已结束"; }
      window.location.assign(log.getAttribute("data-page"));
    });
    source.onerror = function () { if (status) { status.textContent = "连接中断,正在重连…"; } };
    source.onopen = function () { if (status) { status.textContent = "实时更新中"; } };
  }
})();
