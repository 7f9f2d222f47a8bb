// ocivision pages: drag-and-drop uploads with per-file progress, live status badges (bounded
// polling with ETag), the result page's confidence slider, row/box and text-line highlighting
// and copy button, and the delete confirmation dialog, selection count and undo notice.
// Served as a static file (the CSP forbids inline scripts). Text from the server is only ever
// put into the page with textContent, never as markup. Without this file every page still works.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- Uploads ----------------------------------------------------------------------------
  var form = document.getElementById("upload-form");
  var input = document.getElementById("file-input");
  var list = document.getElementById("upload-list");
  var grid = document.getElementById("grid");
  var queue = [];
  var running = 0;
  // One upload at a time per page: the uplink is the bottleneck anyway, and the server sizes
  // its upload limit from memory for one upload per person (16 people at once by default).
  var MAX_PARALLEL = 1;

  function tokenOf(f) {
    var t = f.querySelector("input[name=csrf]");
    return t ? t.value : "";
  }

  function addCard(result) {
    if (!grid || !result.id) return;
    if (grid.querySelector('[data-id="' + CSS.escape(result.id) + '"]')) return;
    var li = el("li", "card");
    li.dataset.id = result.id;
    li.dataset.status = "pending";
    var a = el("a", "thumb");
    a.href = "/images/" + encodeURIComponent(result.id);
    var img = el("img");
    img.src = "/images/" + encodeURIComponent(result.id) + "/thumb";
    img.alt = result.file + " (not analysed yet)";
    img.width = 400;
    img.height = 300;
    a.appendChild(img);
    var meta = el("div", "meta");
    var name = el("a", "name", result.file);
    name.href = a.href;
    name.title = result.file;
    var badge = el("span", "badge pending", "pending");
    badge.setAttribute("data-badge", "");
    var sel = el("label", "select");
    var box = el("input");
    box.type = "checkbox";
    box.name = "id";
    box.value = result.id;
    box.setAttribute("form", "bulk");
    box.dataset.name = result.file;
    sel.appendChild(box);
    sel.appendChild(document.createTextNode(" Select "));
    sel.appendChild(el("span", "visually-hidden", result.file));
    meta.appendChild(name);
    meta.appendChild(badge);
    meta.appendChild(sel);
    li.appendChild(a);
    li.appendChild(meta);
    grid.insertBefore(li, grid.firstChild);
    var empty = document.querySelector(".gallery .notice.empty");
    if (empty) empty.remove();
    startPolling();
  }

  function send(job) {
    running++;
    var data = new FormData();
    data.append("csrf", tokenOf(form));
    data.append("file", job.file, job.file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) job.bar.value = Math.round((e.loaded / e.total) * 100);
    };
    xhr.onload = function () {
      running--;
      if (xhr.status === 503) {
        var wait = parseInt(xhr.getResponseHeader("Retry-After") || "5", 10);
        job.state.textContent = "Server busy, retrying in " + wait + " s…";
        setTimeout(function () { queue.unshift(job); pump(); }, wait * 1000);
        pump();
        return;
      }
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      var result = body && body.results ? body.results[0] : body;
      job.bar.value = 100;
      if (result && result.ok) {
        job.row.className = "ok";
        job.state.textContent = result.duplicate_of ? result.message : "Uploaded, analysis pending";
        addCard(result);
      } else {
        job.row.className = "refused";
        job.state.textContent = (result && result.message) || "Upload failed (" + xhr.status + ")";
      }
      pump();
    };
    xhr.onerror = function () {
      running--;
      job.row.className = "refused";
      job.state.textContent = "The connection failed; try again.";
      pump();
    };
    xhr.send(data);
  }

  function pump() {
    while (running < MAX_PARALLEL && queue.length) send(queue.shift());
  }

  function enqueue(files) {
    var max = parseInt(form.dataset.maxBytes || "0", 10);
    Array.prototype.forEach.call(files, function (file) {
      var row = el("li");
      var name = el("span", "file", file.name);
      var bar = el("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", "Upload progress of " + file.name);
      var state = el("span", "state", "Waiting…");
      row.appendChild(name);
      row.appendChild(bar);
      row.appendChild(state);
      list.appendChild(row);
      if (max && file.size > max) {
        row.className = "refused";
        state.textContent = "Too large: the limit is " + (max / 1048576).toFixed(1) + " MB";
        return;
      }
      state.textContent = "Uploading…";
      queue.push({ file: file, row: row, bar: bar, state: state });
    });
    pump();
  }

  if (form && input && list) {
    // The browser's own check would point at the hidden input; the submit handler asks instead.
    form.noValidate = true;
    input.addEventListener("change", function () {
      if (input.files && input.files.length) enqueue(input.files);
      input.value = "";
    });
    // Choosing files uploads them at once, so the Upload button here opens the chooser.
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (input.files && input.files.length) enqueue(input.files);
      else input.click();
    });
    ["dragenter", "dragover"].forEach(function (type) {
      form.addEventListener(type, function (e) {
        e.preventDefault();
        form.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      form.addEventListener(type, function (e) {
        e.preventDefault();
        form.classList.remove("dragging");
      });
    });
    form.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files.length) enqueue(e.dataTransfer.files);
    });
  }

  // ---- Live status --------------------------------------------------------------------------
  var polling = false;
  var etag = null;
  var polls = 0;
  var MAX_POLLS = 400; // about 20 minutes at the slowest interval; then reload to see more

  function watched() {
    return Array.prototype.filter.call(
      document.querySelectorAll("[data-status]"),
      function (n) { return ["pending", "analyzing", "waiting"].indexOf(n.dataset.status) >= 0; }
    );
  }

  function update(node, item) {
    if (!item || node.dataset.status === item.status) return;
    var detail = node.id === "detail-badge";
    if (detail && (item.status === "done" || item.status === "failed")) {
      window.location.reload();
      return;
    }
    node.dataset.status = item.status;
    var badge = detail ? node : node.querySelector("[data-badge]");
    if (badge) {
      badge.className = "badge " + item.status;
      badge.textContent = item.badge;
    }
    var img = node.querySelector("img");
    if (img && item.alt) img.alt = item.alt;
    if (item.status === "failed" && !detail && !node.querySelector(".reason")) {
      var meta = node.querySelector(".meta");
      var reason = el("p", "reason", item.error || "the analysis failed");
      var retry = el("form", "retry");
      retry.method = "post";
      retry.action = "/images/" + encodeURIComponent(node.dataset.id) + "/reanalyze";
      var t = el("input");
      t.type = "hidden";
      t.name = "csrf";
      t.value = grid ? grid.dataset.retryToken : "";
      var b = el("button", "button small", "Retry");
      b.type = "submit";
      retry.appendChild(t);
      retry.appendChild(b);
      meta.insertBefore(reason, badge.nextSibling);
      meta.insertBefore(retry, reason.nextSibling);
    }
  }

  function poll() {
    var nodes = watched();
    if (!nodes.length || polls >= MAX_POLLS) {
      polling = false;
      return;
    }
    polls++;
    var ids = nodes.map(function (n) { return n.dataset.id; }).slice(0, 200);
    var headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    fetch("/api/status?ids=" + encodeURIComponent(ids.join(",")), { headers: headers, cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 304) return null;
        if (!r.ok) throw new Error("status " + r.status);
        etag = r.headers.get("ETag");
        return r.json();
      })
      .then(function (body) {
        if (body && body.items) {
          nodes.forEach(function (n) { update(n, body.items[n.dataset.id]); });
        }
      })
      .catch(function () { /* keep polling, more slowly */ })
      .then(function () {
        var delay = polls < 30 ? 1500 : polls < 90 ? 4000 : 10000;
        setTimeout(poll, delay);
      });
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    polls = 0;
    etag = null;
    setTimeout(poll, 1000);
  }

  if (watched().length) startPolling();

  // ---- Result page ----------------------------------------------------------------------------
  var slider = document.getElementById("min-confidence");
  var output = document.getElementById("min-confidence-value");
  var stage = document.getElementById("stage");

  function byIndex(i) {
    return document.querySelectorAll('[data-index="' + i + '"]');
  }

  // Labels sit on their box's top-left corner; one that would cover an earlier label moves
  // down until it does not (a few steps at most).
  function placeLabels() {
    if (!stage) return;
    var placed = [];
    Array.prototype.forEach.call(stage.querySelectorAll(".box-label"), function (label) {
      var x = parseFloat(label.dataset.x) || 0;
      var y = parseFloat(label.dataset.y) || 0;
      label.style.left = (x * 100).toFixed(2) + "%";
      label.style.top = (y * 100).toFixed(2) + "%";
      label.style.transform = y < 0.06 ? "none" : "translateY(-100%)";
      var shift = 0;
      for (var step = 0; step < 8; step++) {
        var r = label.getBoundingClientRect();
        var hit = placed.some(function (p) {
          return r.left < p.right && p.left < r.right && r.top < p.bottom && p.top < r.bottom;
        });
        if (!hit) break;
        shift += r.height + 2;
        label.style.transform = (y < 0.06 ? "" : "translateY(-100%) ") + "translateY(" + shift + "px)";
      }
      placed.push(label.getBoundingClientRect());
    });
  }
  if (stage) {
    var stageImg = stage.querySelector("img");
    if (stageImg && !stageImg.complete) stageImg.addEventListener("load", placeLabels);
    placeLabels();
    window.addEventListener("resize", placeLabels);
  }

  var caption = document.getElementById("caption");
  var captionText = caption ? caption.textContent : "";
  if (slider) {
    var apply = function () {
      var min = parseFloat(slider.value);
      if (output) output.textContent = Math.round(min * 100) + "%";
      slider.setAttribute("aria-valuetext", Math.round(min * 100) + " %");
      var rows = document.querySelectorAll("tr[data-confidence]");
      var lines = document.querySelectorAll(".boxes .line[data-confidence]");
      var above = function (list) {
        return Array.prototype.filter.call(list, function (r) { return parseFloat(r.dataset.confidence) >= min; }).length;
      };
      if (caption && (rows.length || lines.length)) {
        var parts = [];
        if (rows.length) parts.push(above(rows) + " of " + rows.length + " objects");
        if (lines.length) parts.push(above(lines) + " of " + lines.length + " text lines");
        caption.textContent = min > 0
          ? parts.join(" and ") + " at " + Math.round(min * 100) + "% confidence or more"
          : captionText;
      }
      Array.prototype.forEach.call(document.querySelectorAll("[data-confidence]"), function (n) {
        n.classList.toggle("is-hidden", parseFloat(n.dataset.confidence) < min);
      });
    };
    slider.addEventListener("input", apply);
    slider.addEventListener("change", apply);
    apply();
  }

  // Hovering a box highlights its row and label, and the other way round; focusing a row does
  // the same. Boxes get no focus listeners: they sit in an aria-hidden drawing, and a listener
  // would make each one an unnamed Tab stop.
  Array.prototype.forEach.call(document.querySelectorAll(".box, tr[data-index]"), function (row) {
    var on = function () {
      Array.prototype.forEach.call(byIndex(row.dataset.index), function (n) { n.classList.add("active"); });
    };
    var off = function () {
      Array.prototype.forEach.call(byIndex(row.dataset.index), function (n) { n.classList.remove("active"); });
    };
    row.addEventListener("mouseenter", on);
    row.addEventListener("mouseleave", off);
    if (row.tagName === "TR") {
      row.addEventListener("focus", on);
      row.addEventListener("blur", off);
    }
  });

  // A text line in the list and its outline on the picture highlight each other on hover.
  Array.prototype.forEach.call(document.querySelectorAll(".boxes .line, #text-lines li"), function (n) {
    var set = function (on) {
      Array.prototype.forEach.call(document.querySelectorAll('[data-line="' + n.dataset.line + '"]'), function (m) {
        m.classList.toggle("active", on);
      });
    };
    n.addEventListener("mouseenter", function () { set(true); });
    n.addEventListener("mouseleave", function () { set(false); });
  });

  // The copy button (hidden without this script; the lines stay selectable text): every line,
  // one per line of the clipboard. Where the clipboard is refused, the lines are selected for
  // Ctrl+C instead. The status line says what happened (role=status, so it is read out).
  var copyButton = document.getElementById("copy-text");
  var textLines = document.getElementById("text-lines");
  var copyStatus = document.getElementById("copy-status");
  if (copyButton && textLines) {
    copyButton.hidden = false;
    var say = function (message) {
      if (!copyStatus) return;
      // Emptied first, so the same message twice is announced twice.
      copyStatus.textContent = "";
      setTimeout(function () { copyStatus.textContent = message; }, 50);
    };
    copyButton.addEventListener("click", function () {
      var items = textLines.querySelectorAll("li");
      var text = Array.prototype.map.call(items, function (li) { return li.textContent; }).join("\n");
      var n = items.length + (items.length === 1 ? " line" : " lines");
      var selectInstead = function () {
        var range = document.createRange();
        range.selectNodeContents(textLines);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        say("The clipboard is not available here: the " + n + " are selected, press Ctrl+C to copy them.");
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { say("Copied " + n + "."); }, selectInstead);
      } else {
        selectInstead();
      }
    });
  }

  // ---- Deleting ---------------------------------------------------------------------------
  // A delete form posts `confirm=yes` only after this dialog; without JavaScript the server
  // shows a confirmation page instead. The dialog names what goes and starts on Cancel.
  function confirmDelete(form, names, done) {
    if (typeof HTMLDialogElement !== "function") { done(true); return; }
    var dialog = el("dialog", "confirm");
    dialog.setAttribute("aria-labelledby", "confirm-title");
    dialog.setAttribute("aria-describedby", "confirm-explain");
    var title = el("h2", null, names.length === 1 ? "Delete " + names[0] + "?" : "Delete " + names.length + " images?");
    title.id = "confirm-title";
    dialog.appendChild(title);
    if (names.length > 1) {
      var ul = el("ul", "confirm-list");
      names.forEach(function (n) { ul.appendChild(el("li", null, n)); });
      dialog.appendChild(ul);
    }
    var seconds = form.dataset.undoSeconds || "0";
    var explain = el("p", null, seconds === "0"
      ? "The image files and their analyses are deleted for good."
      : (names.length === 1 ? "It leaves" : "They leave") + " the gallery at once. You can undo this for " +
        seconds + " seconds; then the files and their analyses are deleted for good.");
    explain.id = "confirm-explain";
    dialog.appendChild(explain);
    var actions = el("div", "confirm-actions");
    var cancel = el("button", "button secondary", "Cancel");
    cancel.type = "button";
    var ok = el("button", "button", names.length === 1 ? "Delete" : "Delete " + names.length + " images");
    ok.type = "button";
    ok.id = "confirm-delete";
    actions.appendChild(cancel);
    actions.appendChild(ok);
    dialog.appendChild(actions);
    document.body.appendChild(dialog);
    var answered = false;
    function answer(yes) {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      done(yes);
    }
    cancel.addEventListener("click", function () { answer(false); });
    ok.addEventListener("click", function () { answer(true); });
    dialog.addEventListener("cancel", function (e) { e.preventDefault(); answer(false); });
    dialog.showModal();
    cancel.focus();
  }

  function confirmedSubmit(form, names, opener) {
    confirmDelete(form, names, function (yes) {
      if (!yes) { if (opener) opener.focus(); return; }
      var c = el("input");
      c.type = "hidden";
      c.name = "confirm";
      c.value = "yes";
      form.appendChild(c);
      form.submit();
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.delete-form"), function (f) {
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      confirmedSubmit(f, [f.dataset.names || "this image"], f.querySelector("button"));
    });
  });

  var bulk = document.getElementById("bulk");
  var bulkButton = document.querySelector(".bulk-delete");
  function selected() {
    return Array.prototype.filter.call(
      document.querySelectorAll('input[type=checkbox][form="bulk"]'),
      function (b) { return b.checked; }
    );
  }
  function updateBulk() {
    if (!bulkButton) return;
    var n = selected().length;
    bulkButton.disabled = n === 0;
    bulkButton.textContent = n === 0 ? "Delete selected…" : "Delete " + n + " selected…";
  }
  if (bulk && bulkButton) {
    document.addEventListener("change", function (e) {
      if (e.target && e.target.getAttribute && e.target.getAttribute("form") === "bulk") updateBulk();
    });
    bulk.addEventListener("submit", function (e) {
      e.preventDefault();
      var boxes = selected();
      if (!boxes.length) { updateBulk(); return; }
      confirmedSubmit(bulk, boxes.map(function (b) { return b.dataset.name || b.value; }), bulkButton);
    });
    updateBulk();
  }

  // After a delete, the notice with the undo button takes the focus (so a screen reader reads
  // it and Tab reaches Undo next), counts down, and says so when the window has closed. After
  // an undo, its notice takes the focus likewise.
  var undoNotice = document.getElementById("undo-notice");
  var restoredNotice = /[?&]restored=/.test(location.search) && document.querySelector("main .notice");
  if (restoredNotice) {
    restoredNotice.tabIndex = -1;
    restoredNotice.focus();
  }
  if (undoNotice) {
    undoNotice.focus();
    var left = parseInt(undoNotice.dataset.seconds || "0", 10);
    var undoText = undoNotice.querySelector(".undo-text");
    var base = undoText ? undoText.textContent.replace(/ You can undo this for .*$/, "") : "";
    var timer = setInterval(function () {
      left--;
      if (left > 0) return;
      clearInterval(timer);
      var undoForm = undoNotice.querySelector("form");
      var hadFocus = undoForm && undoForm.contains(document.activeElement);
      if (undoForm) undoForm.remove();
      if (undoText) undoText.textContent = base + " The undo window has closed, so the deletion is final.";
      if (hadFocus) undoNotice.focus();
    }, 1000);
  }
})();
