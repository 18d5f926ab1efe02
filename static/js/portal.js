/*
 * ML Portal behaviour. Vanilla JS, no inline handlers (the CSP forbids inline script).
 * Everything is bound by event delegation on the document, so content swapped in by htmx or
 * by the upload helper works without re-binding. Every feature is an enhancement: the pages
 * work with JS off.
 */
(function () {
  "use strict";

  // (a) <select data-autosubmit>: submit on change; the Save button is only needed without JS.
  var SUBMITS = "button[type=submit], input[type=submit]";
  function hideAutosubmitButtons(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      if (select.form) select.form.querySelectorAll(SUBMITS).forEach(function (b) { b.hidden = true; });
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
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // (c) The user menu (<details class="usermenu">): close on outside click or Escape;
  // arrow keys move between its items since the markup uses role="menu".
  function openMenus() { return document.querySelectorAll("details.usermenu[open]"); }
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
  // <progress data-upload-progress> and an element [data-upload-status]; the form's
  // data-upload-processing says what happens between the last byte sent and the answer.
  function formatBytes(n) {
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
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
    form.querySelectorAll(SUBMITS).forEach(function (b) { b.disabled = busy; });
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function uploadFailed(form, text) {
    var progress = form.querySelector("progress[data-upload-progress]");
    if (progress) progress.classList.add("danger");
    setStatus(form, "Upload failed: " + text, true);
    setBusy(form, false);
  }

  // Replace this page's <main> with the one in an HTML response (a form re-rendered with its
  // errors). Returns false when the response has no <main id="main">.
  function swapMain(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var main = document.getElementById("main");
    var fresh = doc.getElementById("main");
    if (!main || !fresh) return false;
    main.innerHTML = fresh.innerHTML;
    if (doc.title) document.title = doc.title;
    hideAutosubmitButtons(main);
    if (window.htmx) window.htmx.process(main);
    // The error may sit far down the page (the second form of /predict/): bring it into view.
    var alert = main.querySelector(".form-errors[role=alert]");
    if (alert) {
      alert.setAttribute("tabindex", "-1");
      alert.focus();
      alert.scrollIntoView({ block: "center" });
    } else {
      main.focus();
    }
    return true;
  }

  function onUploadLoad(form, xhr, requestUrl) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    var isHtml = type.indexOf("html") !== -1;
    var data = null;
    if (type.indexOf("json") !== -1) {
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
    }
    if (xhr.status >= 400) {
      // A form page answering 400 with its field errors: show them in place.
      if (isHtml && /class="[^"]*\b(form-errors|field-error)\b/.test(xhr.responseText) && swapMain(xhr.responseText)) return;
      // Problem details (RFC 9457) carry a human-readable `detail`.
      uploadFailed(form, (data && (data.detail || data.title)) || (xhr.status + " " + (xhr.statusText || "error")));
      return;
    }
    // Our upload views answer {"location": url} (tenants/web/pages.py redirect_after_post).
    var target = data ? (data.location || data.url) : null;
    // A view that still answers a 302: XHR followed it, and the page it fetched has already
    // consumed the flashed message. Loading that URL again would lose the message, so show the
    // page already fetched and give it its address.
    if (!target && !data && isHtml && xhr.responseURL && xhr.responseURL !== requestUrl &&
        sameOrigin(xhr.responseURL) && swapMain(xhr.responseText)) {
      window.history.replaceState(null, "", xhr.responseURL);
      return;
    }
    if (target && sameOrigin(target)) {
      var bar = form.querySelector("progress[data-upload-progress]");
      if (bar) { bar.max = 100; bar.value = 100; bar.textContent = "100%"; }
      setStatus(form, "Upload complete. Opening…", false);
      window.location.assign(target);
      return;
    }
    // Same URL answered 200 with HTML: the form came back with errors; show them.
    if (isHtml && swapMain(xhr.responseText)) return;
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

    if (progress) { // indeterminate until the first progress event
      progress.hidden = false;
      progress.removeAttribute("value");
      progress.classList.remove("danger");
    }
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var pct = (e.loaded / e.total) * 100;
      if (progress) { progress.max = 100; progress.value = pct; progress.textContent = Math.round(pct) + "%"; }
      setStatus(form, formatBytes(e.loaded) + " of " + formatBytes(e.total) + " (" + Math.floor(pct) + "%)", false);
    };
    xhr.upload.onload = function () {
      // Every byte is sent (fast uploads may never fire a progress event): show a full bar.
      if (progress) { progress.max = 100; progress.value = 100; progress.textContent = "100%"; }
      // Large files take a while to check and profile once sent: say what is happening.
      setStatus(form, form.getAttribute("data-upload-processing") || "Processing…", false);
    };
    xhr.onload = function () { onUploadLoad(form, xhr, requestUrl); };
    xhr.onerror = function () { uploadFailed(form, "the connection was lost."); };
    xhr.onabort = function () { uploadFailed(form, "cancelled."); };

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
    var input = zone && zone.closest("form").querySelector("input[type=file]");
    if (!input) return;
    event.preventDefault();
    zone.classList.remove("is-dragover");
    var files = event.dataTransfer.files;
    if (!input.multiple && files.length > 1) {
      var one = new DataTransfer();
      one.items.add(files[0]);
      files = one.files;
    }
    input.files = files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // (e) <button data-fill-sample> fills every input of its form that has a data-sample value
  // (the "try it" form: a typical row of the training data).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-fill-sample]");
    if (!button || !button.form) return;
    var first = null;
    button.form.querySelectorAll("input[data-sample]").forEach(function (input) {
      input.value = input.getAttribute("data-sample");
      first = first || input;
    });
    if (first) first.focus();
  });

  // (f) htmx leaves 4xx answers unswapped; a form marked data-swap-errors (the "try it" form)
  // answers 400/403/422 with itself and its errors, which must replace it like a 200.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var source = event.detail.elt;
    if (status >= 400 && status < 500 && source && source.closest && source.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // (g) Select all / none for a list of checkboxes: <button data-check-all="features"> and
  // data-check-none tick or untick every box of that name in the button's form. The buttons sit in
  // a [data-checklist-tools] block that is hidden until this script shows it (useless without JS).
  function showChecklistTools(root) {
    root.querySelectorAll("[data-checklist-tools]").forEach(function (tools) { tools.hidden = false; });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-check-all], [data-check-none]");
    if (!button || !button.form) return;
    var all = button.hasAttribute("data-check-all");
    var name = button.getAttribute(all ? "data-check-all" : "data-check-none");
    button.form.querySelectorAll("input[type=checkbox]").forEach(function (box) {
      if (box.name === name && !box.disabled) box.checked = all;
    });
  });

  hideAutosubmitButtons(document);
  showChecklistTools(document);
  document.addEventListener("htmx:load", function (event) {
    hideAutosubmitButtons(event.target);
    showChecklistTools(event.target);
  });
})();

// ---------- h5: copy buttons (the new API token) --------------------------------------------
// <button data-copy="ID" hidden> copies the text of the element with that id; hidden until this
// script shows it (useless without JS). A [data-copy-status="ID"] element says what happened.
(function () {
  function say(id, text) {
    var status = document.querySelector('[data-copy-status="' + id + '"]');
    if (status) status.textContent = text;
  }
  function fallbackCopy(source) {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
    return copied;
  }
  function showCopyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) { button.hidden = false; });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var id = button.getAttribute("data-copy");
    var source = document.getElementById(id);
    if (!source) return;
    var text = source.textContent.trim();
    var done = function () { button.textContent = "Copied"; say(id, "Copied to the clipboard."); };
    var failed = function () {
      if (fallbackCopy(source)) { done(); } else { say(id, "Select the token and copy it by hand."); }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, failed);
    } else {
      failed();
    }
  });
  showCopyButtons(document);
  document.addEventListener("htmx:load", function (event) { showCopyButtons(event.target); });
})();

/*
 * ---------- navigation: the menu button at narrow widths ----------------------------------
 * At phone widths the main navigation collapses behind a "Menu" button (CSS decides when the
 * button shows; this only unhides it and toggles). Escape closes the menu and returns focus to
 * the button. Without JS the button stays hidden and the items wrap onto several rows.
 */
(function () {
  "use strict";

  var toggle = document.querySelector("button.nav-toggle");
  var nav = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (!nav) return;

  function setOpen(open) {
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    nav.classList.toggle("open", open);
  }

  document.documentElement.classList.add("has-nav-toggle");
  toggle.hidden = false;
  toggle.addEventListener("click", function () {
    setOpen(toggle.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !nav.classList.contains("open")) return;
    setOpen(false);
    toggle.focus();
  });
})();

/*
 * ---------- tables that scroll sideways: reachable by keyboard ----------------------------
 * A .table-wrap that overflows (wide tables at phone widths) becomes a focusable, named region,
 * so keyboard users can scroll it with the arrow keys (WCAG 2.1.1; axe-core's
 * scrollable-region-focusable). Checked again on resize and on content swapped in by htmx.
 */
(function () {
  "use strict";

  function markScrollable(root) {
    root.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        var table = wrap.querySelector("table");
        var caption = table && (table.getAttribute("aria-label") || (table.caption && table.caption.textContent));
        var heading = wrap.closest("section") && wrap.closest("section").querySelector("h1, h2");
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", (caption || (heading && heading.textContent) || "Table").trim() + " (scrolls sideways)");
      } else if (wrap.getAttribute("role") === "region") {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    });
  }

  var pending = null;
  markScrollable(document);
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () { markScrollable(document); }, 150);
  });
  document.addEventListener("htmx:load", function (event) { markScrollable(event.target); });
})();
