/*
 * ML Portal behaviour. Vanilla JS, no inline handlers (the CSP forbids inline script).
 * Everything is bound by event delegation on the document, so content swapped in by htmx or
 * by the upload helper works without re-binding. Every feature is an enhancement: the pages
 * work with JS off.
 */
(function () {
  "use strict";

  // (a) <select data-autosubmit>: submit on change; the Save button is only needed without JS.
  function hideAutosubmitButtons(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      if (!select.form) return;
      select.form.querySelectorAll("button[type=submit], input[type=submit]").forEach(function (b) {
        b.hidden = true;
      });
    });
  }

  document.addEventListener("change", function (event) {
    var select = event.target.closest && event.target.closest("select[data-autosubmit]");
    if (!select || !select.form) return;
    // requestSubmit fires the submit event, so [data-confirm] and htmx still see it.
    if (select.form.requestSubmit) select.form.requestSubmit();
    else select.form.submit();
  });

  // (b) <form data-confirm="Really?">, or a submit button with data-confirm.
  // Capture phase on the document runs before htmx's listener on the form, so stopping the
  // event here also stops an hx-post form.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // (c) The user menu (<details class="usermenu">): close on outside click or Escape;
  // arrow keys move between its items since the markup uses role="menu".
  function openMenus() {
    return document.querySelectorAll("details.usermenu[open]");
  }
  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      openMenus().forEach(function (menu) {
        var hadFocus = menu.contains(document.activeElement);
        menu.open = false;
        if (hadFocus) menu.querySelector("summary").focus();
      });
      return;
    }
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    var menu = event.target.closest && event.target.closest("details.usermenu[open]");
    if (!menu) return;
    var items = Array.prototype.slice.call(menu.querySelectorAll(".menu a, .menu button"));
    if (!items.length) return;
    event.preventDefault();
    var i = items.indexOf(document.activeElement);
    var next = event.key === "ArrowDown" ? i + 1 : (i < 0 ? items.length : i) - 1;
    items[(next + items.length) % items.length].focus();
  });

  // (d) Upload with progress: <form data-upload> with an <input type=file>,
  // <progress data-upload-progress> and an element [data-upload-status].
  function formatBytes(n) {
    var units = ["B", "KB", "MB", "GB", "TB"];
    var i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function setStatus(form, text, isError) {
    var status = form.querySelector("[data-upload-status]");
    if (!status) return;
    if (isError) status.setAttribute("role", "alert");
    else status.removeAttribute("role");
    status.textContent = text;
  }

  function sameOrigin(url) {
    // Only follow links to this workspace; a URL echoed in a response must not send the user away.
    try { return new URL(url, window.location.href).origin === window.location.origin; }
    catch (e) { return false; }
  }

  function setBusy(form, busy) {
    form.querySelectorAll("button[type=submit], input[type=submit]").forEach(function (b) { b.disabled = busy; });
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function onUploadLoad(form, xhr, requestUrl) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    var data = null;
    if (type.indexOf("json") !== -1) {
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
    }
    if (xhr.status >= 400 || xhr.status === 0) {
      // Problem details (RFC 9457) carry a human-readable `detail`.
      var text = (data && (data.detail || data.title)) || (xhr.status + " " + (xhr.statusText || "Upload failed"));
      setStatus(form, "Upload failed: " + text, true);
      setBusy(form, false);
      return;
    }
    var target = data ? (data.location || data.url) : null;
    // XHR follows redirects itself; a different final URL means the server redirected (PRG).
    if (!target && !data && xhr.responseURL && xhr.responseURL !== requestUrl) target = xhr.responseURL;
    if (target && sameOrigin(target)) {
      setStatus(form, "Upload complete. Opening…", false);
      window.location.assign(target);
      return;
    }
    if (!data && type.indexOf("html") !== -1) {
      // Same URL answered with HTML: the form came back with errors. Show that page's main.
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var main = document.getElementById("main");
      var fresh = doc.getElementById("main");
      if (main && fresh) {
        main.innerHTML = fresh.innerHTML;
        if (doc.title) document.title = doc.title;
        hideAutosubmitButtons(main);
        if (window.htmx) window.htmx.process(main);
        main.focus();
        return;
      }
    }
    setStatus(form, "Upload complete.", false);
    setBusy(form, false);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-upload") || event.defaultPrevented) return;
    if (!window.XMLHttpRequest || !window.FormData) return; // plain form post still works
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;

    var requestUrl = new URL(form.getAttribute("action") || window.location.href, window.location.href).href;
    var progress = form.querySelector("progress[data-upload-progress]");
    var body = new FormData(form); // includes csrfmiddlewaretoken
    var token = form.querySelector("[name=csrfmiddlewaretoken]");
    var xhr = new XMLHttpRequest();
    xhr.open((form.getAttribute("method") || "POST").toUpperCase(), requestUrl);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    if (token) xhr.setRequestHeader("X-CSRFToken", token.value);

    if (progress) { progress.hidden = false; progress.max = 100; progress.removeAttribute("value"); }
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var pct = (e.loaded / e.total) * 100;
      if (progress) { progress.value = pct; progress.textContent = Math.round(pct) + "%"; }
      setStatus(form, formatBytes(e.loaded) + " of " + formatBytes(e.total) + " (" + Math.floor(pct) + "%)", false);
    };
    xhr.upload.onload = function () { setStatus(form, "Processing…", false); };
    xhr.onload = function () { onUploadLoad(form, xhr, requestUrl); };
    xhr.onerror = function () { setStatus(form, "Upload failed: the connection was lost.", true); setBusy(form, false); };
    xhr.onabort = function () { setStatus(form, "Upload cancelled.", true); setBusy(form, false); };

    setBusy(form, true);
    setStatus(form, "Starting upload…", false);
    xhr.send(body);
  });

  // Show the chosen file's name and size before upload.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.type !== "file" || !input.form || !input.form.hasAttribute("data-upload")) return;
    var files = Array.prototype.slice.call(input.files || []);
    var label = files.map(function (f) { return f.name + " (" + formatBytes(f.size) + ")"; }).join(", ");
    setStatus(input.form, label ? "Selected: " + label : "", false);
  });

  // Drag and drop onto a .dropzone inside a form[data-upload].
  function dropzoneFor(event) {
    var zone = event.target.closest && event.target.closest("form[data-upload] .dropzone");
    var dt = event.dataTransfer;
    return zone && dt && Array.prototype.indexOf.call(dt.types, "Files") !== -1 ? zone : null;
  }
  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var zone = dropzoneFor(event);
      if (!zone) return;
      event.preventDefault(); // required for the drop event to fire
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("is-dragover");
    });
  });
  document.addEventListener("dragleave", function (event) {
    var zone = event.target.closest && event.target.closest(".dropzone");
    // dragleave also fires when moving onto a child; only clear when leaving the zone itself.
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("is-dragover");
  });
  document.addEventListener("drop", function (event) {
    var zone = dropzoneFor(event);
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("is-dragover");
    var input = zone.closest("form").querySelector("input[type=file]");
    if (!input) return;
    var files = event.dataTransfer.files;
    if (!input.multiple && files.length > 1) {
      var one = new DataTransfer();
      one.items.add(files[0]);
      files = one.files;
    }
    input.files = files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  hideAutosubmitButtons(document);
  document.addEventListener("htmx:load", function (event) { hideAutosubmitButtons(event.target); });
})();
