;;; llm-sidecar-test.el --- ERT tests of llm-sidecar.el  -*- lexical-binding: t; -*-

;; Run in batch against the real llm-sidecar binary ($LLM_SIDECAR_BIN) and the mock LLM server (../mock-llm):
;;   emacs -Q --batch -L . -l ert -l test/llm-sidecar-test.el -f ert-run-tests-batch-and-exit

;;; Code:

(require 'ert)
(require 'cl-lib)
(require 'json)
(require 'auth-source)
(require 'llm-sidecar)
(require 'llm-sidecar-completion)

(defconst llm-sidecar-test--root
  (file-name-directory (directory-file-name (file-name-directory (or load-file-name buffer-file-name)))))
(defconst llm-sidecar-test--mock
  (expand-file-name "../mock-llm/mock_llm.py" llm-sidecar-test--root))
(defconst llm-sidecar-test--bin
  (or (getenv "LLM_SIDECAR_BIN") (expand-file-name "../../target/release/llm-sidecar" llm-sidecar-test--root)))
(defconst llm-sidecar-test--timeout 20 "Seconds; generous, the machine is shared.")

(defvar llm-sidecar-test--mock-dir nil)
(defvar llm-sidecar-test--mock-port nil)

(defun llm-sidecar-test--wait (what pred &optional timeout)
  "Process output until PRED is true; fail naming WHAT after TIMEOUT seconds."
  (let ((deadline (+ (float-time) (or timeout llm-sidecar-test--timeout))))
    (while (and (not (funcall pred)) (< (float-time) deadline))
      (accept-process-output nil 0.02))
    (unless (funcall pred) (ert-fail (format "timed out waiting for %s" what)))))

(defmacro llm-sidecar-test--with-mock (&rest body)
  "Run BODY with a fresh mock LLM server and a clean *Messages*."
  (declare (indent 0))
  `(let* ((llm-sidecar-test--mock-dir (make-temp-file "mock-llm" t))
          (llm-sidecar-command (list llm-sidecar-test--bin))
          (llm-sidecar-settings nil)
          (llm-sidecar-log-level nil)
          (llm-sidecar-custom-llms nil)
          (llm-sidecar-profiles nil)
          (llm-sidecar-completion-settings nil)
          (llm-sidecar--error-shown-for 'none)
          (auth-sources nil)
          (mock (make-process :name "mock-llm" :noquery t :connection-type 'pipe
                              :buffer nil :stderr (get-buffer-create " *mock-llm stderr*")
                              :command (list "python3" llm-sidecar-test--mock "--state-dir"
                                             llm-sidecar-test--mock-dir "--max-seconds" "600"))))
     (with-current-buffer (messages-buffer) (let ((inhibit-read-only t)) (erase-buffer)))
     (clrhash llm-sidecar-auth--warned)
     (auth-source-forget-all-cached)
     (unwind-protect
         (progn
           (llm-sidecar-test--wait "the mock LLM server to listen"
                                   (lambda () (file-exists-p (expand-file-name "port" llm-sidecar-test--mock-dir))))
           (setq llm-sidecar-test--mock-port
                 (string-to-number (with-temp-buffer
                                     (insert-file-contents (expand-file-name "port" llm-sidecar-test--mock-dir))
                                     (buffer-string))))
           ,@body)
       (llm-sidecar-cancel t)
       (delete-process mock)
       (delete-directory llm-sidecar-test--mock-dir t)
       (dolist (b (buffer-list))
         (when (string-prefix-p "*llm*" (buffer-name b)) (kill-buffer b))))))

(defun llm-sidecar-test--settings (scenario &rest extra)
  "AutoDev v1 settings (an alist) for SCENARIO of the mock, from a preset, with EXTRA pairs."
  (append extra
          `(("preset" . "deepseek")
            ("customEngineServer" . ,(format "http://127.0.0.1:%d/%s/v1/chat/completions"
                                             llm-sidecar-test--mock-port scenario))
            ("customEngineToken" . "sk-test-token")
            (retry . ((maxRetries . 0))))))

(defun llm-sidecar-test--use (scenario &rest extra)
  (setq llm-sidecar-settings (apply #'llm-sidecar-test--settings scenario extra)))

(defun llm-sidecar-test--events (scenario &optional event)
  "The mock's events of SCENARIO (and EVENT), as alists."
  (let ((file (expand-file-name "events.jsonl" llm-sidecar-test--mock-dir)))
    (when (file-exists-p file)
      (with-temp-buffer
        (insert-file-contents file)
        (cl-loop for line in (split-string (buffer-string) "\n" t)
                 for e = (json-parse-string line :object-type 'alist)
                 when (and (equal (alist-get 'scenario e) scenario)
                           (or (null event) (equal (alist-get 'event e) event)))
                 collect e)))))

(defun llm-sidecar-test--last-content (scenario)
  (let* ((body (alist-get 'body (car (llm-sidecar-test--events scenario "request"))))
         (messages (alist-get 'messages body)))
    (alist-get 'content (aref messages (1- (length messages))))))

(defun llm-sidecar-test--text (buf)
  (with-current-buffer buf (buffer-substring-no-properties (point-min) (point-max))))

(defun llm-sidecar-test--status (buf)
  (buffer-local-value 'llm-sidecar-status buf))

(defun llm-sidecar-test--wait-status (buf status)
  (llm-sidecar-test--wait (format "status %s of %s" status buf)
                          (lambda () (eq (llm-sidecar-test--status buf) status))))

(defun llm-sidecar-test--messages ()
  (with-current-buffer (messages-buffer) (buffer-string)))

(defun llm-sidecar-test--plain-settings (scenario &rest extra)
  "Settings for SCENARIO of the mock without a preset and without a key, with EXTRA pairs.
A pair of EXTRA replaces the default of the same name."
  (append extra
          (cl-remove-if
           (lambda (pair) (assq (car pair) extra))
           `((customEngineServer . ,(format "http://127.0.0.1:%d/%s/v1/chat/completions"
                                           llm-sidecar-test--mock-port scenario))
            (customEngineResponseType . "SSE")
            (customEngineRequestFormat . ((customFields . ((model . "plain-model") (stream . t)))))
            (customEngineResponseFormat . "$.choices[0].delta.content")
            (retry . ((maxRetries . 0)))))))

(defun llm-sidecar-test--authinfo (&rest lines)
  "Use a fresh ~/.authinfo-style file holding LINES as the only `auth-sources'."
  (let ((file (expand-file-name "authinfo" llm-sidecar-test--mock-dir)))
    (with-temp-file file (insert (mapconcat #'identity lines "\n") "\n"))
    (setq auth-sources (list file))
    (auth-source-forget-all-cached)
    file))

(defun llm-sidecar-test--headers (scenario &optional nth)
  "The auth headers of the NTH (default last) request the mock got for SCENARIO."
  (let ((reqs (llm-sidecar-test--events scenario "request")))
    (alist-get 'headers (if nth (nth nth reqs) (car (last reqs))))))

(defun llm-sidecar-test--buffers-holding (text)
  "The names of the live buffers whose text contains TEXT."
  (cl-loop for b in (buffer-list)
           when (with-current-buffer b
                  (save-restriction (widen) (save-excursion (goto-char (point-min)) (search-forward text nil t))))
           collect (buffer-name b)))

(defun llm-sidecar-test--proc-alive (pid)
  (file-exists-p (format "/proc/%d" pid)))

;;;; Tests

(ert-deftest llm-sidecar-where-requests-go-is-risky-as-a-local-variable ()
  "A cloned project's .dir-locals.el cannot quietly point the key or the code elsewhere."
  (dolist (var '(llm-sidecar-command llm-sidecar-settings llm-sidecar-custom-llms llm-sidecar-profiles
                 llm-sidecar-completion-settings llm-sidecar-auth-source llm-sidecar-auth-source-user))
    (should (risky-local-variable-p var))
    (should-not (safe-local-variable-p var '((customEngineServer . "http://attacker.example/v1"))))))

(ert-deftest llm-sidecar-streams-cjk-and-emoji-into-the-llm-buffer ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "unicode")
    (let* ((buf (llm-sidecar-ask "Say hello in Chinese"))
           (changes 0))
      (with-current-buffer buf
        (add-hook 'after-change-functions (lambda (&rest _) (cl-incf changes)) nil t))
      (should (equal (buffer-name buf) "*llm*"))
      (should (eq (llm-sidecar-test--status buf) 'streaming))
      (should (get-buffer-window buf))
      (llm-sidecar-test--wait-status buf 'done)
      (should (equal (llm-sidecar-test--text buf) "你好，世界！\nEmoji: 👋🏽 👨‍👩‍👧 — done ✓"))
      (should (string-suffix-p " 👨‍👩‍👧 — done ✓" (llm-sidecar-test--text buf)))
      ;; piece by piece as the chunks came, not once at the end
      (should (>= changes 3))
      (should (equal (llm-sidecar-test--last-content "unicode") "Say hello in Chinese"))
      (let ((req (car (llm-sidecar-test--events "unicode" "request"))))
        (should (equal (alist-get 'authorization (alist-get 'headers req)) "Bearer sk-test-token"))
        (should (equal (alist-get 'model (alist-get 'body req)) "deepseek-chat"))))))

(ert-deftest llm-sidecar-sends-the-region-with-the-prompt ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "hello")
    (with-temp-buffer
      (emacs-lisp-mode)
      (insert "(setq a 1)\n(defun add (x y)\n  (+ x y))\n")
      (transient-mark-mode 1)
      (goto-char (point-min))
      (forward-line 1)
      (push-mark (point) t t)
      (goto-char (point-max))
      (backward-char 1)
      (let ((buf (cl-letf (((symbol-function 'read-string) (lambda (&rest _) "Explain this")))
                   (call-interactively #'llm-sidecar-ask))))
        (llm-sidecar-test--wait-status buf 'done)
        (should (equal (llm-sidecar-test--text buf) "Hello, world!"))
        (should (equal (llm-sidecar-test--last-content "hello")
                       "Explain this\n\n```emacs-lisp\n(defun add (x y)\n  (+ x y))\n```"))))))

(ert-deftest llm-sidecar-takes-an-autodev-customllms-entry-as-the-settings ()
  (llm-sidecar-test--with-mock
    (setq llm-sidecar-settings
          `((name . "Mock")
            (url . ,(format "http://127.0.0.1:%d/hello/v1/chat/completions" llm-sidecar-test--mock-port))
            (auth . ((type . "Bearer") (token . "sk-entry-token")))
            (requestFormat . "{\"customFields\": {\"model\": \"mock-model\", \"stream\": true}}")
            (responseFormat . "$.choices[0].delta.content")
            (modelType . "Default")))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'done)
      (should (equal (llm-sidecar-test--text buf) "Hello, world!"))
      (let ((req (car (llm-sidecar-test--events "hello" "request"))))
        (should (equal (alist-get 'authorization (alist-get 'headers req)) "Bearer sk-entry-token"))
        (should (equal (alist-get 'model (alist-get 'body req)) "mock-model"))
        (should (eq (alist-get 'stream (alist-get 'body req)) t))))))

(ert-deftest llm-sidecar-settings-with-a-nested-request-format-object ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "hello" '(customEngineRequestFormat . ((customFields . ((model . "nested-model")
                                                                                     (stream . t)
                                                                                     (temperature . 0.5)))))
                           '(customEngineResponseType . "SSE"))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'done)
      (let ((body (alist-get 'body (car (llm-sidecar-test--events "hello" "request")))))
        (should (equal (alist-get 'model body) "nested-model"))
        (should (equal (alist-get 'temperature body) 0.5))))))

(ert-deftest llm-sidecar-puts-reasoning-in-a-hidden-block-above-the-answer ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "reasoning")
    (let ((buf (llm-sidecar-ask "What is six times seven?")))
      (llm-sidecar-test--wait-status buf 'done)
      (should (equal (llm-sidecar-test--text buf)
                     "Reasoning:\nLet me think about it.\nStep two.\n---\nThe answer is 42."))
      (with-current-buffer buf
        (goto-char (point-min))
        (search-forward "Let me think")
        (should (invisible-p (point)))
        (search-forward "The answer")
        (should-not (invisible-p (point)))
        (goto-char (point-min))
        (should-not (invisible-p (point)))
        (llm-sidecar-toggle-reasoning)
        (search-forward "Let me think")
        (should-not (invisible-p (point)))))))

(ert-deftest llm-sidecar-cancel-keeps-the-partial-text-and-closes-the-upstream ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "slow")
    (let ((buf (llm-sidecar-ask "Write a long story")))
      (llm-sidecar-test--wait "the first chunks" (lambda () (equal (llm-sidecar-test--text buf) "partial 答案 🚀")))
      (should (eq (llm-sidecar-test--status buf) 'streaming))
      (with-current-buffer buf (should (= 1 (llm-sidecar-cancel))))
      (should (eq (llm-sidecar-test--status buf) 'cancelled))
      (llm-sidecar-test--wait "the mock to see the client disconnect"
                              (lambda () (= 1 (length (llm-sidecar-test--events "slow" "disconnected")))))
      (accept-process-output nil 0.3)
      (should (equal (llm-sidecar-test--text buf) "partial 答案 🚀"))
      (should (eq (llm-sidecar-test--status buf) 'cancelled))
      (should-not (string-match-p "exited\\|answered HTTP" (llm-sidecar-test--messages))))))

(ert-deftest llm-sidecar-killing-a-streaming-answer-cancels-it ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "slow")
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait "the first chunks" (lambda () (equal (llm-sidecar-test--text buf) "partial 答案 🚀")))
      (kill-buffer buf)
      (llm-sidecar-test--wait "the mock to see the client disconnect"
                              (lambda () (= 1 (length (llm-sidecar-test--events "slow" "disconnected")))))
      (should-not (string-match-p "llm-sidecar exited\\|answered HTTP" (llm-sidecar-test--messages))))))

(ert-deftest llm-sidecar-http-error-shows-the-provider-message ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "unauthorized")
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'error)
      (should (string-match-p "llm-sidecar: LLM server answered HTTP 401: Incorrect API key provided"
                              (llm-sidecar-test--messages)))
      (should (equal (llm-sidecar-test--text buf) "")))))

(ert-deftest llm-sidecar-no-match-shows-the-suggested-path ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "othershape" '("customEngineResponseFormat" . "$.choices[0].delta.text"))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'error)
      (should (string-match-p (regexp-quote "suggested path: $.choices[0].delta.content (gives \"AlphaBeta\")")
                              (llm-sidecar-test--messages))))))

(ert-deftest llm-sidecar-two-asks-at-once-stream-into-two-buffers ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "slow")
    (let ((first (llm-sidecar-ask "first")))
      (llm-sidecar-test--wait "the first answer to start"
                              (lambda () (equal (llm-sidecar-test--text first) "partial 答案 🚀")))
      (let ((pid (llm-sidecar-pid)))
        (llm-sidecar-test--use "hare")
        (let ((second (llm-sidecar-ask "second")))
          (should-not (eq first second))
          (should (equal (buffer-name second) "*llm*<2>"))
          (llm-sidecar-test--wait-status second 'done)
          (should (equal (llm-sidecar-test--text second) "fast one"))
          (should (eq (llm-sidecar-test--status first) 'streaming))
          (should (equal (llm-sidecar-test--text first) "partial 答案 🚀"))
          (should (equal pid (llm-sidecar-pid)))
          (with-current-buffer first (llm-sidecar-cancel))
          (should (eq (llm-sidecar-test--status first) 'cancelled))
          (should (eq (llm-sidecar-test--status second) 'done))
          (llm-sidecar-test--wait "the disconnect"
                                  (lambda () (= 1 (length (llm-sidecar-test--events "slow" "disconnected"))))))))))

(ert-deftest llm-sidecar-test-connection-and-presets ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "hello")
    (llm-sidecar-test-connection)
    (llm-sidecar-test--wait "the report" (lambda () (string-match-p "connection OK" (llm-sidecar-test--messages))))
    (should (string-match-p "HTTP 200, text/event-stream" (llm-sidecar-test--messages)))
    (should (string-match-p "sample: Hello, world!" (llm-sidecar-test--messages)))
    (llm-sidecar-test--use "unauthorized")
    (llm-sidecar-test-connection)
    (llm-sidecar-test--wait "the failure" (lambda () (string-match-p "connection test failed" (llm-sidecar-test--messages))))
    (should (string-match-p "connection test failed: LLM server answered HTTP 401: Incorrect API key provided"
                            (llm-sidecar-test--messages)))
    (llm-sidecar-presets)
    (llm-sidecar-test--wait "the presets buffer"
                            (lambda () (let ((b (get-buffer "*llm-sidecar presets*")))
                                         (and b (string-match-p "deepseek" (llm-sidecar-test--text b))))))
    (let ((text (llm-sidecar-test--text "*llm-sidecar presets*")))
      (should (string-match-p "\nollama\n" text))
      (should (string-match-p "\nollama-fim.* \\[code completion\\]\n" text))
      (should (string-match-p (regexp-quote "https://api.deepseek.com/v1/chat/completions") text)))))

(ert-deftest llm-sidecar-stderr-is-logged-and-kill-emacs-stops-the-sidecar ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-stop)
    (let ((llm-sidecar-log-level "debug"))
      (llm-sidecar-test--use "hello")
      (let ((buf (llm-sidecar-ask "hi")))
        (llm-sidecar-test--wait-status buf 'done)))
    (let ((pid (llm-sidecar-pid))
          (log (llm-sidecar-log)))
      (should pid)
      (llm-sidecar-test--wait "sidecar log lines" (lambda () (string-match-p "DEBUG" (llm-sidecar-test--text log))))
      (should-not (string-match-p "sk-test-token" (llm-sidecar-test--text log)))
      (should (memq #'llm-sidecar-stop kill-emacs-hook))
      (run-hooks 'kill-emacs-hook)
      (llm-sidecar-test--wait "the sidecar to exit" (lambda () (not (llm-sidecar-test--proc-alive pid))))
      (should-not (llm-sidecar-running-p))
      (should-not (string-match-p "llm-sidecar exited" (llm-sidecar-test--messages)))
      (let ((again (llm-sidecar-ask "again")))
        (llm-sidecar-test--wait-status again 'done)
        (should (equal (llm-sidecar-test--text again) "Hello, world!"))
        (should-not (equal pid (llm-sidecar-pid)))))))

(ert-deftest llm-sidecar-a-sidecar-killed-mid-stream-is-reported-and-restarted ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--use "slow")
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait "the first chunks" (lambda () (equal (llm-sidecar-test--text buf) "partial 答案 🚀")))
      (signal-process (llm-sidecar-pid) 'KILL)
      (llm-sidecar-test--wait-status buf 'error)
      (should (string-match-p "while answering; the partial text is kept in \\*llm\\*" (llm-sidecar-test--messages)))
      (should (string-match-p "llm-sidecar exited with code 9" (llm-sidecar-test--messages)))
      (should (equal (llm-sidecar-test--text buf) "partial 答案 🚀"))
      (llm-sidecar-test--use "hello")
      (let ((again (llm-sidecar-ask "again")))
        (llm-sidecar-test--wait-status again 'done)
        (should (equal (llm-sidecar-test--text again) "Hello, world!"))))))

(ert-deftest llm-sidecar-a-missing-binary-is-reported ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-stop)
    (let ((llm-sidecar-command '("/nonexistent/llm-sidecar")))
      (llm-sidecar-test--use "hello")
      (should-not (llm-sidecar-ask "hi"))
      (should (string-match-p "cannot run /nonexistent/llm-sidecar" (llm-sidecar-test--messages))))))

(ert-deftest llm-sidecar-reads-the-key-from-auth-source-by-host ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--authinfo
     "machine api.example.com password sk-other-host"
     (format "machine 127.0.0.1 port %d password sk-from-authinfo" llm-sidecar-test--mock-port))
    (setq llm-sidecar-settings (llm-sidecar-test--plain-settings "hello"))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'done)
      (should (equal (llm-sidecar-test--text buf) "Hello, world!"))
      (should (equal (alist-get 'authorization (llm-sidecar-test--headers "hello")) "Bearer sk-from-authinfo"))
      (should-not (string-match-p "plain text" (llm-sidecar-test--messages))))
    ;; a customLlms entry (2.x form) gets its key into auth.token, keeping its auth type
    (setq llm-sidecar-settings
          `((name . "Mock")
            (url . ,(format "http://127.0.0.1:%d/hare/v1/chat/completions" llm-sidecar-test--mock-port))
            (auth . ((type . "Bearer")))
            (requestFormat . "{\"customFields\": {\"model\": \"entry-model\", \"stream\": true}}")
            (responseFormat . "$.choices[0].delta.content")))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'done)
      (should (equal (alist-get 'authorization (llm-sidecar-test--headers "hare")) "Bearer sk-from-authinfo")))))

(ert-deftest llm-sidecar-a-key-for-one-host-is-not-sent-to-another ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--authinfo
     "machine localhost password sk-host-a"
     ;; the same host on another port is another server
     (format "machine 127.0.0.1 port %d password sk-other-port" (1+ llm-sidecar-test--mock-port)))
    ;; host A (localhost) gets its key
    (setq llm-sidecar-settings
          (llm-sidecar-test--plain-settings
           "hello" `(customEngineServer . ,(format "http://localhost:%d/hello/v1/chat/completions"
                                                   llm-sidecar-test--mock-port))))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'done)
      (should (equal (alist-get 'authorization (llm-sidecar-test--headers "hello")) "Bearer sk-host-a")))
    ;; host B (127.0.0.1, the same mock) gets no key at all
    (setq llm-sidecar-settings (llm-sidecar-test--plain-settings "hare"))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'done)
      (let ((headers (llm-sidecar-test--headers "hare")))
        (should (= 1 (length (llm-sidecar-test--events "hare" "request"))))
        (should-not (alist-get 'authorization headers))
        (should-not (string-match-p "sk-" (format "%S" headers)))))))

(ert-deftest llm-sidecar-a-plain-key-is-used-with-one-warning ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--authinfo "machine api.example.com password sk-elsewhere")
    (setq llm-sidecar-settings
          (llm-sidecar-test--plain-settings
           "hello" '(customEngineToken . "sk-plain-token")
           '(customEngineRequestFormat . ((customFields . ((model . "m") (stream . t)))
                                          (customHeaders . (("x-api-key" . "sk-plain-header")
                                                            ("X-Title" . "not a key")))))))
    (dotimes (_ 2)
      (let ((buf (llm-sidecar-ask "hi")))
        (llm-sidecar-test--wait-status buf 'done)))
    (let ((reqs (llm-sidecar-test--events "hello" "request")))
      (should (= 2 (length reqs)))
      (dolist (r reqs)
        (should (equal (alist-get 'authorization (alist-get 'headers r)) "Bearer sk-plain-token"))
        (should (equal (alist-get 'x-api-key (alist-get 'headers r)) "sk-plain-header"))))
    (let ((msgs (llm-sidecar-test--messages)))
      (should (= 1 (cl-count-if (lambda (l) (string-match-p "customEngineToken is stored in plain text" l))
                                (split-string msgs "\n"))))
      (should (string-match-p "machine 127.0.0.1 password <key>" msgs))
      (should (= 1 (cl-count-if (lambda (l) (string-match-p "header x-api-key in .* holds a key in plain text" l))
                                (split-string msgs "\n"))))
      (should-not (string-match-p "X-Title" msgs))
      (should-not (string-match-p "sk-plain" msgs)))
    ;; an auth-source entry for the host wins over the plain key, without a warning
    (clrhash llm-sidecar-auth--warned)
    (llm-sidecar-test--authinfo "machine 127.0.0.1 password sk-from-authinfo")
    (setq llm-sidecar-settings (llm-sidecar-test--plain-settings "hare" '(customEngineToken . "sk-plain-token")))
    (with-current-buffer (messages-buffer) (let ((inhibit-read-only t)) (erase-buffer)))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'done)
      (should (equal (alist-get 'authorization (llm-sidecar-test--headers "hare")) "Bearer sk-from-authinfo"))
      (should-not (string-match-p "plain text" (llm-sidecar-test--messages))))))

(ert-deftest llm-sidecar-a-key-header-from-auth-source ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--authinfo "machine 127.0.0.1 login api-key password azure-key-from-authinfo")
    (setq llm-sidecar-settings
          (llm-sidecar-test--plain-settings
           "hello"
           '(customEngineRequestFormat . ((customFields . ((model . "m") (stream . t)))
                                          (customHeaders . (("api-key" . auth-source)))))))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'done)
      (let ((headers (llm-sidecar-test--headers "hello")))
        (should (equal (alist-get 'api-key headers) "azure-key-from-authinfo"))
        ;; the header's entry is not also sent as the bearer token
        (should-not (alist-get 'authorization headers))))
    ;; no entry: a clear error, and nothing is sent
    (llm-sidecar-test--authinfo "machine api.example.com login api-key password elsewhere")
    (should-error (llm-sidecar-ask "hi") :type 'user-error)
    (should (= 1 (length (llm-sidecar-test--events "hello" "request"))))))

(ert-deftest llm-sidecar-key-sources-are-left-to-the-sidecar ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-stop)
    ;; an auth-source entry for the host is there, but the settings name their own source
    (llm-sidecar-test--authinfo "machine 127.0.0.1 password sk-from-authinfo")
    (let ((process-environment (append '("LLM_EMACS_TEST_KEY=sk-env-4411" "LLM_EMACS_TEST_HEADER=hdr-env-5522")
                                       process-environment)))
      (setq llm-sidecar-settings
            (llm-sidecar-test--plain-settings
             "hello" '(customEngineTokenEnv . "LLM_EMACS_TEST_KEY")
             '(customEngineRequestFormat . ((customFields . ((model . "m") (stream . t)))
                                            (customHeaders . (("x-api-key" . ((env . "LLM_EMACS_TEST_HEADER")))))))))
      (let ((buf (llm-sidecar-ask "hi")))
        (llm-sidecar-test--wait-status buf 'done)
        (let ((headers (llm-sidecar-test--headers "hello")))
          (should (equal (alist-get 'authorization headers) "Bearer sk-env-4411"))
          (should (equal (alist-get 'x-api-key headers) "hdr-env-5522"))))
      ;; a command the sidecar runs
      (setq llm-sidecar-settings
            (llm-sidecar-test--plain-settings "hare" '(customEngineTokenCommand . ["printf" "sk-cmd-6633"])))
      (let ((buf (llm-sidecar-ask "hi")))
        (llm-sidecar-test--wait-status buf 'done)
        (should (equal (alist-get 'authorization (llm-sidecar-test--headers "hare")) "Bearer sk-cmd-6633")))
      ;; the keys never passed through Emacs, and nothing was warned about
      (should-not (llm-sidecar-test--buffers-holding "sk-env-4411"))
      (should-not (llm-sidecar-test--buffers-holding "sk-cmd-6633"))
      (should-not (string-match-p "plain text" (llm-sidecar-test--messages))))))

(ert-deftest llm-sidecar-a-refused-request-without-a-key-says-where-to-put-one ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-test--authinfo "machine api.example.com password sk-elsewhere")
    (setq llm-sidecar-settings (llm-sidecar-test--plain-settings "unauthorized"))
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'error)
      (should (string-match-p "HTTP 401: Incorrect API key provided" (llm-sidecar-test--messages)))
      (should (string-match-p (regexp-quote "no key was sent to 127.0.0.1: nothing in auth-source for it (add \"machine 127.0.0.1 password <key>\"")
                              (llm-sidecar-test--messages))))
    ;; with a key, a 401 is the server's word alone
    (with-current-buffer (messages-buffer) (let ((inhibit-read-only t)) (erase-buffer)))
    (llm-sidecar-test--authinfo "machine 127.0.0.1 password sk-wrong")
    (let ((buf (llm-sidecar-ask "hi")))
      (llm-sidecar-test--wait-status buf 'error)
      (should (string-match-p "HTTP 401" (llm-sidecar-test--messages)))
      (should-not (string-match-p "no key was sent" (llm-sidecar-test--messages))))))

(ert-deftest llm-sidecar-keeps-the-key-out-of-every-buffer ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-stop)
    (llm-sidecar-test--authinfo "machine 127.0.0.1 password sk-secret-4f2a9c")
    (let ((llm-sidecar-log-level "debug"))
      (setq llm-sidecar-settings (llm-sidecar-test--plain-settings "hello"))
      (let ((buf (llm-sidecar-ask "hi")))
        (llm-sidecar-test--wait-status buf 'done)
        (should (equal (alist-get 'authorization (llm-sidecar-test--headers "hello")) "Bearer sk-secret-4f2a9c"))
        (llm-sidecar-test--wait "sidecar log lines"
                                (lambda () (string-match-p "DEBUG" (llm-sidecar-test--text (llm-sidecar-log)))))
        ;; jsonrpc.el's event log would hold every message sent, the settings and their key with them
        (let ((events (jsonrpc-events-buffer llm-sidecar--connection)))
          (should-not (string-match-p "client-request\\|:params" (llm-sidecar-test--text events))))
        (should-not (llm-sidecar-test--buffers-holding "sk-secret-4f2a9c"))))))

;;;; Code completion

(defun llm-sidecar-test--fim-settings (scenario &rest extra)
  "Completion settings for the fim SCENARIO of the mock (OpenAI's /v1/completions), with EXTRA pairs."
  (append extra
          `((customEngineServer . ,(format "http://127.0.0.1:%d/%s/v1/completions" llm-sidecar-test--mock-port scenario))
            (customEngineResponseFormat . "$.choices[0].text")
            (customEngineRequestFormat . ((customFields . ((model . "mock-coder") (stream . t)))))
            (retry . ((maxRetries . 0)))
            (fim . ((multiline . t))))))

(defmacro llm-sidecar-test--in-code (before after &rest body)
  "Run BODY in a python-mode buffer holding BEFORE and AFTER, point between them, shown in the selected window."
  (declare (indent 2))
  `(let ((buf (generate-new-buffer "code.py"))
         (python-indent-guess-indent-offset nil))
     (unwind-protect
         (progn
           (switch-to-buffer buf)
           (python-mode)
           (insert ,before)
           (save-excursion (insert ,after))
           ,@body)
       (with-current-buffer buf (llm-sidecar-dismiss) (set-buffer-modified-p nil))
       (kill-buffer buf))))

(defun llm-sidecar-test--wait-ghost (&optional text)
  "Wait until this buffer shows ghost text (TEXT when given); return it."
  (llm-sidecar-test--wait (format "ghost text %S" text)
                          (lambda () (and (llm-sidecar-ghost-text)
                                          (or (null text) (equal (llm-sidecar-ghost-text) text)))))
  (llm-sidecar-ghost-text))

(defun llm-sidecar-test--ghost-overlays ()
  "The overlays showing ghost text in this buffer, as (POSITION . AFTER-STRING)."
  (cl-loop for o in (overlays-in (point-min) (point-max))
           when (overlay-get o 'after-string)
           collect (cons (overlay-start o) (substring-no-properties (overlay-get o 'after-string)))))

(defun llm-sidecar-test--command (fn &rest args)
  "Run FN with ARGS as the command loop runs a command: then `post-command-hook'."
  (run-hooks 'pre-command-hook)
  (apply fn args)
  (run-hooks 'post-command-hook))

(ert-deftest llm-sidecar-complete-shows-ghost-text-and-accept-inserts-it ()
  (llm-sidecar-test--with-mock
    (setq llm-sidecar-completion-settings (llm-sidecar-test--fim-settings "fim"))
    (llm-sidecar-test--in-code "def add(a, b):\n    " "\n\nprint(add(1, 2))\n"
      (let ((before (buffer-string)) (pt (point)))
        (llm-sidecar-complete)
        (should (eq llm-sidecar-completion-status 'requesting))
        (let ((ghost (llm-sidecar-test--wait-ghost)))
          (should (equal ghost "total = a + b\n    return total"))
          ;; shown at point as an overlay; the text itself is unchanged
          (should (equal (llm-sidecar-test--ghost-overlays) (list (cons pt ghost))))
          (should (equal (buffer-string) before))
          (should (eq (key-binding (kbd "TAB")) 'indent-for-tab-command))
          (llm-sidecar-completion-mode 1)
          (should (eq (key-binding (kbd "TAB")) 'llm-sidecar-accept))
          (undo-boundary)
          (llm-sidecar-test--command #'llm-sidecar-accept)
          (undo-boundary)
          (should (equal (buffer-string)
                         "def add(a, b):\n    total = a + b\n    return total\n\nprint(add(1, 2))\n"))
          (should (= (point) (+ pt (length ghost))))
          (should-not (llm-sidecar-test--ghost-overlays))
          (should-not (llm-sidecar-ghost-text))
          ;; TAB falls through again
          (should (eq (key-binding (kbd "TAB")) 'indent-for-tab-command))
          ;; one undo step takes all of it back
          (let ((last-command nil)) (undo))
          (should (equal (buffer-string) before)))))))

(ert-deftest llm-sidecar-complete-sends-prefix-and-suffix-around-point ()
  (llm-sidecar-test--with-mock
    (setq llm-sidecar-completion-settings (llm-sidecar-test--fim-settings "fimunicode"))
    (let ((before "# 你好 👋🏽 世界 👨‍👩‍👧\ngreeting = \"é\"\n")
          (after "\nfarewell = \"再见 🚀\"\n"))
      (llm-sidecar-test--in-code before after
        (llm-sidecar-complete)
        (should (equal (llm-sidecar-test--wait-ghost) "print(\"你好 👋🏽\")"))
        (let ((body (alist-get 'body (car (llm-sidecar-test--events "fimunicode" "request")))))
          (should (equal (alist-get 'prompt body) before))
          (should (equal (alist-get 'suffix body) after))
          (should (equal (alist-get 'model body) "mock-coder")))
        (llm-sidecar-accept)
        (should (equal (buffer-string) (concat before "print(\"你好 👋🏽\")" after)))))))

(ert-deftest llm-sidecar-completion-mode-requests-when-typing-pauses ()
  (llm-sidecar-test--with-mock
    (setq llm-sidecar-completion-settings (llm-sidecar-test--fim-settings "fim"))
    (let ((llm-sidecar-completion-delay 0.7))
      (llm-sidecar-test--in-code "def add(a, b):\n" ""
        (llm-sidecar-completion-mode 1)
        (llm-sidecar-test--command #'insert "    ")
        ;; typing armed the idle timer, with the configured delay, for this buffer
        (let ((timer llm-sidecar--idle-timer))
          (should (timerp timer))
          (should (memq timer timer-idle-list))
          (should (< (abs (- (float-time (timer--time timer)) 0.7)) 0.001))
          ;; typing again re-arms it: still one timer
          (llm-sidecar-test--command #'insert " ")
          (should (= 1 (cl-count-if (lambda (tm) (eq (timer--function tm) #'llm-sidecar--idle-request))
                                    timer-idle-list)))
          (setq timer llm-sidecar--idle-timer)
          ;; Emacs went idle: the timer runs
          (timer-event-handler timer))
        (should (equal (llm-sidecar-test--wait-ghost) "total = a + b\n    return total"))
        (should (= 1 (length (llm-sidecar-test--events "fim" "request"))))
        ;; no request while the region is active
        (llm-sidecar-dismiss)
        (transient-mark-mode 1)
        (push-mark (point-min) t t)
        (llm-sidecar-test--command #'insert " ")
        (timer-event-handler llm-sidecar--idle-timer)
        (should-not llm-sidecar--pending)
        (should-not (eq llm-sidecar-completion-status 'requesting))
        (deactivate-mark)
        ;; nor while a completion popup is up
        (let ((completion-in-region-mode t))
          (llm-sidecar-test--command #'insert " ")
          (timer-event-handler llm-sidecar--idle-timer)
          (should-not llm-sidecar--pending))
        (accept-process-output nil 0.3)
        (should (= 1 (length (llm-sidecar-test--events "fim" "request"))))
        (should-not (llm-sidecar-ghost-text))))))

(ert-deftest llm-sidecar-ghost-text-follows-typing-and-goes-on-other-edits ()
  (llm-sidecar-test--with-mock
    (setq llm-sidecar-completion-settings (llm-sidecar-test--fim-settings "fim"))
    (llm-sidecar-test--in-code "def add(a, b):\n    " ""
      (llm-sidecar-completion-mode 1)
      (llm-sidecar-complete)
      (llm-sidecar-test--wait-ghost "total = a + b\n    return total")
      ;; typing the suggestion's next characters keeps the rest shown at once
      (llm-sidecar-test--command #'insert "tot")
      (should (equal (llm-sidecar-ghost-text) "al = a + b\n    return total"))
      (should (equal (llm-sidecar-test--ghost-overlays) (list (cons (point) "al = a + b\n    return total"))))
      ;; ... and asks again when typing pauses: the sidecar's cache answers, the server gets no new request
      (timer-event-handler llm-sidecar--idle-timer)
      (llm-sidecar-test--wait "the answer to the new request" (lambda () (null llm-sidecar--pending)))
      (should (equal (llm-sidecar-ghost-text) "al = a + b\n    return total"))
      (should (= 1 (length (llm-sidecar-test--events "fim" "request"))))
      ;; an edit that does not match removes it
      (llm-sidecar-test--command #'insert "X")
      (should-not (llm-sidecar-ghost-text))
      (should-not (llm-sidecar-test--ghost-overlays))
      ;; so does moving point, and deleting
      (delete-char -1)
      (llm-sidecar-complete)
      (llm-sidecar-test--wait-ghost)
      (llm-sidecar-test--command #'backward-char 1)
      (should-not (llm-sidecar-test--ghost-overlays))
      (forward-char 1)
      (llm-sidecar-complete)
      (llm-sidecar-test--wait-ghost)
      (llm-sidecar-test--command #'delete-char -1)
      (should-not (llm-sidecar-test--ghost-overlays)))))

(ert-deftest llm-sidecar-a-newer-completion-cancels-the-older ()
  (llm-sidecar-test--with-mock
    (setq llm-sidecar-completion-settings (llm-sidecar-test--fim-settings "fimslow"))
    (llm-sidecar-test--in-code "def add(a, b):\n    " ""
      (let* ((cancels nil)
             (notify (symbol-function 'jsonrpc-notify))
             (first (cl-letf (((symbol-function 'jsonrpc-notify)
                               (lambda (conn method params)
                                 (when (eq method '$/cancelRequest) (push (plist-get params :id) cancels))
                                 (funcall notify conn method params))))
                      (prog1 (llm-sidecar-complete)
                        (should-not cancels)))))
        (should (integerp first))
        (llm-sidecar-test--wait "the mock to get the first request"
                                (lambda () (llm-sidecar-test--events "fimslow" "request")))
        (setq llm-sidecar-completion-settings (llm-sidecar-test--fim-settings "fim"))
        (let ((second (cl-letf (((symbol-function 'jsonrpc-notify)
                                 (lambda (conn method params)
                                   (when (eq method '$/cancelRequest) (push (plist-get params :id) cancels))
                                   (funcall notify conn method params))))
                        (llm-sidecar-complete))))
          (should (> second first))
          ;; the client cancelled the first request itself
          (should (equal cancels (list first)))
          (llm-sidecar-test--wait "the mock to see the first request's connection closed"
                                  (lambda () (llm-sidecar-test--events "fimslow" "disconnected")))
          (should (equal (llm-sidecar-test--wait-ghost) "total = a + b\n    return total"))
          (should (= 1 (length (llm-sidecar-test--events "fimslow" "request"))))
          (should-not (string-match-p "llm-sidecar:" (llm-sidecar-test--messages)))
          ;; typing while a request is in flight cancels it too: its answer would be for other text
          (setq llm-sidecar-completion-settings (llm-sidecar-test--fim-settings "fimslow"))
          (llm-sidecar-dismiss)
          (llm-sidecar-complete)
          (llm-sidecar-test--wait "the second slow request"
                                  (lambda () (= 2 (length (llm-sidecar-test--events "fimslow" "request")))))
          (llm-sidecar-test--command #'insert "x")
          (should-not llm-sidecar--pending)
          (llm-sidecar-test--wait "the mock to see that connection closed"
                                  (lambda () (= 2 (length (llm-sidecar-test--events "fimslow" "disconnected")))))
          (should-not (llm-sidecar-ghost-text)))))))

(ert-deftest llm-sidecar-custom-llms-completion-entry-for-ghost-text-default-for-chat ()
  (llm-sidecar-test--with-mock
    (llm-sidecar-stop)
    (let ((entry (lambda (name type url rf)
                   `((name . ,name) (modelType . ,type)
                     (url . ,(format "http://127.0.0.1:%d/%s" llm-sidecar-test--mock-port url))
                     (auth . ((type . "Bearer")))
                     (requestFormat . "{\"customFields\": {\"model\": \"entry-model\", \"stream\": true}}")
                     (responseFormat . ,rf)))))
      ;; each entry's key comes from auth-source by the entry's host
      (llm-sidecar-test--authinfo "machine 127.0.0.1 password sk-list-key")
      ;; the sidecar runs before the list is set: the list reaches it with didChangeConfiguration
      (setq llm-sidecar-settings (llm-sidecar-test--plain-settings "hare"))
      (llm-sidecar-test--wait-status (llm-sidecar-ask "warm up") 'done)
      (setq llm-sidecar-settings nil)
      (setq llm-sidecar-custom-llms
            (list (funcall entry "Planner" "Plan" "tortoise/v1/chat/completions" "$.choices[0].delta.content")
                  (funcall entry "Coder" "Completion" "fim/v1/completions" "$.choices[0].text")
                  (funcall entry "Chat" "Default" "hello/v1/chat/completions" "$.choices[0].delta.content")))
      (let ((buf (llm-sidecar-ask "hi")))
        (llm-sidecar-test--wait-status buf 'done)
        (should (equal (llm-sidecar-test--text buf) "Hello, world!")))
      (llm-sidecar-test--in-code "def add(a, b):\n    " ""
        (llm-sidecar-complete)
        (should (equal (llm-sidecar-test--wait-ghost) "total = a + b\n    return total")))
      (should (= 1 (length (llm-sidecar-test--events "hello" "request"))))
      (should (= 1 (length (llm-sidecar-test--events "fim" "request"))))
      (should (equal (alist-get 'authorization (llm-sidecar-test--headers "hello")) "Bearer sk-list-key"))
      (should (equal (alist-get 'authorization (llm-sidecar-test--headers "fim")) "Bearer sk-list-key"))
      (should-not (llm-sidecar-test--events "tortoise" "request"))
      ;; a new sidecar gets the list with initialize
      (llm-sidecar-stop)
      (let ((buf (llm-sidecar-ask "again")))
        (llm-sidecar-test--wait-status buf 'done)
        (should (= 2 (length (llm-sidecar-test--events "hello" "request"))))))))

(ert-deftest llm-sidecar-completion-errors-are-shown-once ()
  (llm-sidecar-test--with-mock
    (setq llm-sidecar-completion-settings (llm-sidecar-test--fim-settings "fimerror"))
    (with-current-buffer (get-buffer-create "*llm-sidecar completion*")
      (let ((inhibit-read-only t)) (erase-buffer)))
    (let ((shown (lambda () (cl-count-if (lambda (l) (string-match-p "FIM backend exploded" l))
                                         (split-string (llm-sidecar-test--messages) "\n")))))
      (llm-sidecar-test--in-code "x = " ""
        (dotimes (_ 3)
          (llm-sidecar-complete)
          (llm-sidecar-test--wait "the error" (lambda () (eq llm-sidecar-completion-status 'error))))
        (should (= 1 (funcall shown)))
        (should (= 3 (cl-count-if (lambda (l) (string-match-p "FIM backend exploded" l))
                                  (split-string (llm-sidecar-test--text "*llm-sidecar completion*") "\n"))))
        (should-not (llm-sidecar-ghost-text))
        ;; other settings: the next failure is shown again, once
        (setq llm-sidecar-completion-settings
              (llm-sidecar-test--fim-settings "fimerror" '(customEngineRequestFormat . ((customFields . ((model . "other")))))))
        (dotimes (_ 2)
          (llm-sidecar-complete)
          (llm-sidecar-test--wait "the error" (lambda () (eq llm-sidecar-completion-status 'error))))
        (should (= 2 (funcall shown)))
        ;; a sidecar that cannot run is reported the same way, not at every pause in typing
        (llm-sidecar-stop)
        (let ((llm-sidecar-command '("/nonexistent/llm-sidecar")))
          (dotimes (_ 3)
            (llm-sidecar-complete)
            (should (eq llm-sidecar-completion-status 'error))))
        (should (= 1 (cl-count-if (lambda (l) (string-match-p "cannot run /nonexistent/llm-sidecar" l))
                                  (split-string (llm-sidecar-test--messages) "\n"))))))))

(ert-deftest llm-sidecar-settings-alists-become-json-objects ()
  (should (equal (json-serialize (llm-sidecar--json '(("a" . 1) (b . ((c . t) (d . :json-false))) (e . ["x" "y"])))
                                :false-object :json-false :null-object nil)
                 "{\"a\":1,\"b\":{\"c\":true,\"d\":false},\"e\":[\"x\",\"y\"]}"))
  ;; the first pair of a name wins, as with `alist-get'
  (should (equal (json-serialize (llm-sidecar--json '((a . 2) (b . 3) (a . 1)))) "{\"a\":2,\"b\":3}")))

(provide 'llm-sidecar-test)
;;; llm-sidecar-test.el ends here
