/*
 * Geppetto task player. One trial at a time; every answer is queued (in memory and in
 * localStorage) and POSTed with an idempotency key until the server confirms it, so a
 * network drop or a reload never loses an answer. Sequential tasks wait for the server's
 * feedback: the outcome of a choice is always decided by the server.
 */
(function () {
  "use strict";

  var configNode = document.getElementById("player-config");
  if (!configNode) {
    return;
  }
  var cfg = JSON.parse(configNode.textContent);
  var csrfInput = document.querySelector("input[name=csrfmiddlewaretoken]");
  var csrf = csrfInput ? csrfInput.value : "";
  var storeKey = "geppetto:" + cfg.token;
  var FEEDBACK_MS = 900;
  var MAX_BACKOFF_MS = 8000;

  var el = {
    player: document.getElementById("player"),
    progress: document.getElementById("progress"),
    counter: document.getElementById("counter"),
    context: document.getElementById("context"),
    stem: document.getElementById("stem"),
    options: document.getElementById("options"),
    feedback: document.getElementById("feedback"),
    status: document.getElementById("status"),
  };

  var answered = cfg.answered || {}; // item key -> server feedback, confirmed answers only
  var pending = loadPending(); // answers given but not yet confirmed, oldest first
  var inflight = false;
  var attempt = 0;
  var retryTimer = null;
  var current = null;
  var shownAt = 0;
  var blurs = 0;
  var pastes = 0;
  var waitingFor = null; // sequential: the key whose feedback we wait for
  var completing = false;

  function loadPending() {
    if (cfg.preview) {
      return [];
    }
    try {
      var stored = JSON.parse(window.localStorage.getItem(storeKey) || "[]");
      return Array.isArray(stored) ? stored : [];
    } catch (e) {
      return [];
    }
  }

  function savePending() {
    if (cfg.preview) {
      return;
    }
    try {
      if (pending.length) {
        window.localStorage.setItem(storeKey, JSON.stringify(pending));
      } else {
        window.localStorage.removeItem(storeKey);
      }
    } catch (e) {
      // Storage full or disabled: the in-memory queue still holds the answers.
    }
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function isDone(key) {
    if (Object.prototype.hasOwnProperty.call(answered, key)) {
      return true;
    }
    return pending.some(function (p) {
      return p.item_key === key;
    });
  }

  function nextKey() {
    for (var i = 0; i < cfg.order.length; i++) {
      if (!isDone(cfg.order[i])) {
        return cfg.order[i];
      }
    }
    return null;
  }

  function countDone() {
    return cfg.order.filter(isDone).length;
  }

  function setStatus(text, kind) {
    el.status.textContent = text;
    el.status.setAttribute("data-kind", kind || "");
  }

  function describeFeedback(feedback) {
    if (!feedback) {
      return "";
    }
    var parts = [];
    if (feedback.outcome) {
      parts.push("You " + feedback.outcome + ".");
    }
    if (feedback.reward !== undefined) {
      parts.push("Points: " + feedback.reward);
    }
    return parts.join(" ");
  }

  function describeContext(fields) {
    if (cfg.kind !== "sequential" || !fields) {
      return "";
    }
    return Object.keys(fields)
      .map(function (k) {
        return k.charAt(0).toUpperCase() + k.slice(1) + " " + fields[k];
      })
      .join(" · ");
  }

  function render() {
    var done = countDone();
    el.progress.max = cfg.order.length;
    el.progress.value = done;
    el.counter.textContent = done + " / " + cfg.order.length;
    current = nextKey();
    // Keyboard users keep their place: focus moves to the new trial's first option.
    var hadFocus = el.options.contains(document.activeElement);
    el.options.textContent = "";
    if (current === null) {
      el.player.setAttribute("data-state", "finished");
      el.context.textContent = "";
      el.stem.textContent = "All answers given.";
      finish();
      return;
    }
    var trial = cfg.trials[current];
    el.player.setAttribute("data-state", "trial");
    el.player.setAttribute("data-item", current);
    el.context.textContent = describeContext(trial.fields);
    el.stem.textContent = trial.text || "Choose an option.";
    trial.options.forEach(function (option, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "option";
      button.setAttribute("data-key", option.key);
      var label = option.label && option.label !== option.key ? " – " + option.label : "";
      button.textContent = option.key + label;
      if (index < 9) {
        button.setAttribute("aria-keyshortcuts", String(index + 1));
      }
      button.addEventListener("click", function () {
        choose(option.key);
      });
      el.options.appendChild(button);
    });
    if (hadFocus && el.options.firstChild) {
      el.options.firstChild.focus({ preventScroll: true });
    }
    blurs = 0;
    pastes = 0;
    shownAt = performance.now();
  }

  function setButtonsDisabled(disabled) {
    Array.prototype.forEach.call(el.options.querySelectorAll("button"), function (b) {
      b.disabled = disabled;
    });
  }

  function choose(optionKey) {
    if (current === null || waitingFor !== null) {
      return;
    }
    var entry = {
      item_key: current,
      answer: optionKey,
      idempotency_key: newKey(),
      rt_ms: Math.round((performance.now() - shownAt) * 10) / 10,
      client_ts: new Date().toISOString(),
      telemetry: {
        webdriver: navigator.webdriver === true,
        blur: blurs,
        paste: pastes,
        viewport: [window.innerWidth, window.innerHeight],
      },
    };
    pending.push(entry);
    savePending();
    if (cfg.kind === "sequential") {
      waitingFor = entry.item_key;
      setButtonsDisabled(true);
      var chosen = el.options.querySelector('button[data-key="' + optionKey + '"]');
      if (chosen) {
        chosen.setAttribute("aria-pressed", "true");
      }
      el.feedback.textContent = "";
    } else {
      render();
    }
    flush();
  }

  function confirmed(key, feedback) {
    answered[key] = feedback || {};
    if (waitingFor === key) {
      el.feedback.textContent = describeFeedback(feedback);
      window.setTimeout(function () {
        waitingFor = null;
        render();
      }, FEEDBACK_MS);
    } else if (current === null) {
      render();
    }
  }

  function scheduleRetry() {
    if (retryTimer !== null) {
      return;
    }
    var delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, attempt));
    attempt += 1;
    retryTimer = window.setTimeout(function () {
      retryTimer = null;
      flush();
    }, delay);
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    });
  }

  function flush() {
    if (inflight || !pending.length) {
      return;
    }
    inflight = true;
    var entry = pending[0];
    post(cfg.answerUrl, entry)
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (data) {
            return { status: response.status, data: data };
          });
      })
      .then(function (result) {
        inflight = false;
        if (result.status === 200 || result.status === 201) {
          attempt = 0;
          pending.shift();
          savePending();
          setStatus(pending.length ? "Saving…" : "All answers saved.", "ok");
          confirmed(entry.item_key, result.data.feedback);
          flush();
        } else if (result.status === 410) {
          pending = [];
          savePending();
          window.location.reload();
        } else if (result.status === 400 || result.status === 409) {
          // The server will never accept this one (e.g. an answer from a stale tab).
          pending.shift();
          savePending();
          window.location.reload();
        } else {
          setStatus("The server is busy; your answers are kept and will be sent.", "wait");
          scheduleRetry();
        }
      })
      .catch(function () {
        inflight = false;
        setStatus(
          "You seem to be offline. Keep going: your answers are kept and will be sent.",
          "offline"
        );
        scheduleRetry();
      });
  }

  function finish() {
    if (pending.length) {
      setStatus("Saving your last answers…", "wait");
      return;
    }
    if (cfg.preview) {
      setStatus("Preview finished. Nothing was stored.", "ok");
      return;
    }
    if (completing) {
      return;
    }
    completing = true;
    setStatus("Finishing…", "wait");
    post(cfg.completeUrl, {})
      .then(function (response) {
        return response.json().then(function (data) {
          return { status: response.status, data: data };
        });
      })
      .then(function (result) {
        if (result.status === 200 && result.data.next) {
          window.location.assign(result.data.next);
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        completing = false;
        setStatus("You seem to be offline. We will finish as soon as you are back.", "offline");
        window.setTimeout(finish, Math.min(MAX_BACKOFF_MS, 1000));
      });
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || !/^[1-9]$/.test(event.key)) {
      return;
    }
    var buttons = el.options.querySelectorAll("button");
    var index = Number(event.key) - 1;
    if (index < buttons.length && !buttons[index].disabled) {
      event.preventDefault();
      buttons[index].click();
    }
  });
  window.addEventListener("blur", function () {
    blurs += 1;
  });
  document.addEventListener("paste", function () {
    pastes += 1;
  });
  window.addEventListener("online", function () {
    attempt = 0;
    if (retryTimer !== null) {
      window.clearTimeout(retryTimer);
      retryTimer = null;
    }
    flush();
  });

  // Answers left in localStorage by an earlier page load are sent first.
  if (pending.length) {
    setStatus("Sending answers saved on this device…", "wait");
  }
  var waiting = pending.length && cfg.kind === "sequential" ? pending[pending.length - 1] : null;
  if (waiting) {
    waitingFor = waiting.item_key;
    current = waiting.item_key;
    el.player.setAttribute("data-state", "trial");
    el.stem.textContent = "Saving your last choice…";
  } else {
    render();
  }
  flush();
})();
