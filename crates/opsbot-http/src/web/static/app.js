// opsbot web UI: confirm dialogs and live job progress. Nothing else; pages work
// without it except for those two.
(function () {
  "use strict";
  document.querySelectorAll("[data-dialog]").forEach(function (button) {
    button.addEventListener("click", function () {
      var dialog = document.getElementById(button.getAttribute("data-dialog"));
      if (dialog && dialog.showModal) { dialog.showModal(); }
    });
  });
  document.querySelectorAll("dialog [data-close]").forEach(function (button) {
    button.addEventListener("click", function () { button.closest("dialog").close(); });
  });

  var card = document.querySelector("[data-job]");
  if (!card) { return; }
  var id = card.getAttribute("data-job");
  var labels = { running: "进行中", succeeded: "成功", failed: "失败", interrupted: "已中断", cancelled: "已取消" };
  function poll() {
    fetch("/api/v1/jobs/" + encodeURIComponent(id), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (job) {
        document.getElementById("job-bar").style.width = job.progress + "%";
        document.getElementById("job-progress").textContent = job.progress + "%";
        var state = document.getElementById("job-state");
        state.textContent = labels[job.state] || job.state;
        state.className = "state " + job.state;
        document.getElementById("job-message").textContent = job.message;
        if (job.state === "running") { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  if (card.querySelector(".state.running")) { setTimeout(poll, 500); }
})();
