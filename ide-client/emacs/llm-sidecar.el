;;; llm-sidecar.el --- Stream LLM answers through llm-sidecar  -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (jsonrpc "1.0.14"))
;; Keywords: tools, convenience
;; URL: https://github.com/OWNER/llm-sidecar

;;; Commentary:

;; A client for llm-sidecar, a small program that talks to any LLM server with the settings of AutoDev's
;; "Custom LLM Server" dialog.  One sidecar process per Emacs is started on first use and spoken to with the
;; built-in jsonrpc.el (JSON-RPC over stdio with Content-Length framing).
;;
;;   M-x llm-sidecar-ask              ask; with an active region, the region is sent after the prompt
;;   M-x llm-sidecar-cancel           cancel the streaming answer (the text so far stays)
;;   M-x llm-sidecar-test-connection  one test completion with the settings, reported
;;   M-x llm-sidecar-presets          the built-in presets
;;   M-x llm-sidecar-log              the sidecar's stderr
;;
;; Configure `llm-sidecar-command' and `llm-sidecar-settings' (M-x customize-group RET llm-sidecar).

;;; Code:

(require 'cl-lib)
(require 'jsonrpc)
(require 'subr-x)
(require 'llm-sidecar-auth)
(require 'llm-sidecar-config)

(defgroup llm-sidecar nil
  "Stream LLM answers through llm-sidecar."
  :group 'tools
  :prefix "llm-sidecar-")

(defcustom llm-sidecar-command '("llm-sidecar")
  "The llm-sidecar command, a list: the program and its arguments."
  :type '(repeat string))

(defcustom llm-sidecar-settings nil
  "The LLM server's settings: an alist in any form the sidecar accepts.
Keys are strings or symbols.  AutoDev v1 dialog fields:
  ((customEngineServer
    . \"https://api.deepseek.com/v1/chat/completions\")
   (customEngineResponseType . \"SSE\")
   (customEngineRequestFormat
    . ((customFields . ((model . \"deepseek-chat\") (stream . t)))))
   (customEngineResponseFormat . \"$.choices[0].delta.content\"))
a preset: ((preset . \"deepseek\")),
or an AutoDev 2.x customLlms entry (url, auth, requestFormat,
responseFormat).  Nested objects are alists, arrays are vectors;
t is true and :json-false is false.
The key: from auth-source by the server's host (see
`llm-sidecar-auth-source'), or read by the sidecar:
(customEngineTokenEnv . \"DEEPSEEK_API_KEY\") or
(customEngineTokenCommand . [\"pass\" \"show\" \"deepseek\"]).  A plain
customEngineToken works too, with a warning."
  :type '(alist :key-type (choice string symbol) :value-type sexp))

(defcustom llm-sidecar-system-prompt nil
  "When non-nil, a system message sent before each prompt."
  :type '(choice (const :tag "None" nil) string))

(defcustom llm-sidecar-log-level nil
  "LLM_SIDECAR_LOG for the sidecar (\"debug\", \"info\", \"warn\"); nil: its default."
  :type '(choice (const :tag "Default" nil) string))

;; What decides where a request, its key or its code go, and what the sidecar runs: never taken from a
;; project's file-local or .dir-locals.el values without asking, and never marked safe for good.
(dolist (var '(llm-sidecar-command llm-sidecar-settings llm-sidecar-custom-llms llm-sidecar-profiles
               llm-sidecar-completion-settings llm-sidecar-auth-source llm-sidecar-auth-source-user))
  (put var 'risky-local-variable t))

(defvar llm-sidecar--connection nil "The jsonrpc connection to the running sidecar.")
(defvar llm-sidecar--streams (make-hash-table :test #'equal) "Stream id -> answer state.")
(defvar llm-sidecar--count 0 "Answers asked so far.")
(defvar llm-sidecar--stopping nil)

(cl-defstruct (llm-sidecar--stream (:constructor llm-sidecar--make-stream))
  id (n 0) buffer connection (status 'streaming) request-id (text "") (reasoning "") (chunks 0)
  reasoning-start reasoning-end answer-marker error result
  ;; the host the request went to without a key, if it did
  unkeyed-host)

(defvar-local llm-sidecar-status nil
  "The status of this buffer's answer: `streaming', `done', `cancelled' or `error'.")

(defvar-local llm-sidecar--stream nil)

;;;; The log

(defun llm-sidecar--stderr-buffer-name ()
  "The sidecar's stderr goes here (jsonrpc.el also copies it to its events buffer)."
  "*llm-sidecar stderr*")

(defun llm-sidecar-log ()
  "Show the sidecar's stderr."
  (interactive)
  (let ((buf (or (and llm-sidecar--connection (jsonrpc-stderr-buffer llm-sidecar--connection))
                 (get-buffer " *llm-sidecar stderr*")
                 (get-buffer "*llm-sidecar events*"))))
    (if buf (display-buffer buf) (message "llm-sidecar: no log yet"))
    buf))

;;;; The process

(defun llm-sidecar-running-p ()
  "Non-nil while the sidecar process runs."
  (and llm-sidecar--connection (jsonrpc-running-p llm-sidecar--connection)))

(defun llm-sidecar-pid ()
  "The sidecar's process id, or nil."
  (and (llm-sidecar-running-p) (process-id (jsonrpc--process llm-sidecar--connection))))

(defun llm-sidecar--error (fmt &rest args)
  "Show an error message FMT with ARGS."
  (let ((msg (apply #'format fmt args)))
    (message "%s" (propertize msg 'face 'error))
    msg))

;; Emacs 30's jsonrpc.el (1.0.19 and later) configures its event log with `:events-buffer-config' and warns
;; about the older `:events-buffer-scrollback-size', which is all Emacs 28 and 29 know.
(defun llm-sidecar--events-initargs ()
  "The initargs that turn jsonrpc.el's event log off, for the running Emacs.
The log would keep every message, and so the settings' keys."
  (if (slot-exists-p 'jsonrpc-connection '-events-buffer-config)
      (list :events-buffer-config (list :size 0 :format 'full))
    (list :events-buffer-scrollback-size 0)))

(defun llm-sidecar--request (conn method params &rest args)
  "Send the request METHOD with PARAMS and ARGS to CONN, asynchronously.
ARGS are those of `jsonrpc-async-request'.  Return the request's id:
jsonrpc.el 1.0.27 and later return it; before, it is the connection's
request counter, just advanced for this request."
  (let ((ret (apply #'jsonrpc-async-request conn method params args)))
    (if (and (consp ret) (integerp (car ret)))
        (car ret)
      (jsonrpc--next-request-id conn))))

(defun llm-sidecar--start (&optional report)
  "Start the sidecar if it is not running; return the connection or nil.
REPORT, a function of a message, reports a sidecar that cannot be
run (default: `llm-sidecar--error')."
  (if (llm-sidecar-running-p)
      llm-sidecar--connection
    (let* ((cmd (if (stringp llm-sidecar-command) (list llm-sidecar-command) llm-sidecar-command))
           (program (car cmd)))
      (cond
       ((not (and program (or (file-executable-p program) (executable-find program))))
        (funcall (or report (lambda (msg) (llm-sidecar--error "%s" msg)))
                 (format-message "llm-sidecar: cannot run %s (not found or not executable); set `llm-sidecar-command'"
                                 program))
        nil)
       (t
        (setq llm-sidecar--stopping nil)
        (setq llm-sidecar--presets nil)
        (setq llm-sidecar--connection
              (apply
               #'make-instance
               'jsonrpc-process-connection
               :name "llm-sidecar"
               :notification-dispatcher #'llm-sidecar--on-notification
               :request-dispatcher (lambda (_conn method _params)
                                     (jsonrpc-error :code -32601 :message (format "%s: not supported" method)))
               :on-shutdown #'llm-sidecar--on-shutdown
               :process
               (lambda ()
                 (let ((process-environment
                        (if llm-sidecar-log-level
                            (cons (concat "LLM_SIDECAR_LOG=" llm-sidecar-log-level) process-environment)
                          process-environment)))
                   (make-process
                    :name "llm-sidecar"
                    :command cmd
                    :connection-type 'pipe
                    :coding 'utf-8-emacs-unix
                    :noquery t
                    ;; the name jsonrpc.el prepared the stderr buffer under
                    :stderr (get-buffer-create "*llm-sidecar stderr*"))))
               (llm-sidecar--events-initargs)))
        (add-hook 'kill-emacs-hook #'llm-sidecar-stop)
        (llm-sidecar--initialize llm-sidecar--connection)
        llm-sidecar--connection)))))

(defun llm-sidecar--on-shutdown (conn)
  "The process of CONN exited."
  (let ((code (process-exit-status (jsonrpc--process conn)))
        (current (eq conn llm-sidecar--connection)))
    (when current
      (setq llm-sidecar--connection nil))
    ;; The answers this process was streaming end here, even when a newer process already runs.
    (maphash (lambda (_id st)
               (when (and (eq (llm-sidecar--stream-status st) 'streaming)
                          (eq (llm-sidecar--stream-connection st) conn))
                 (llm-sidecar--set-status st 'error)
                 (llm-sidecar--error "llm-sidecar exited (code %s) while answering%s" code
                                     (if (string-empty-p (llm-sidecar--stream-text st)) ""
                                       (format "; the partial text is kept in %s"
                                               (buffer-name (llm-sidecar--stream-buffer st)))))))
             llm-sidecar--streams)
    (unless (or llm-sidecar--stopping (eql code 0) (not current))
      (llm-sidecar--error "llm-sidecar exited with code %s (its log: M-x llm-sidecar-log)" code))))

(defun llm-sidecar-stop ()
  "Stop the sidecar: shutdown, exit, then kill it if it still runs.
Runs from `kill-emacs-hook'."
  (interactive)
  (when (llm-sidecar-running-p)
    (let ((conn llm-sidecar--connection))
      (setq llm-sidecar--stopping t)
      (maphash (lambda (_id st)
                 (when (eq (llm-sidecar--stream-status st) 'streaming)
                   (llm-sidecar--set-status st 'cancelled)))
               llm-sidecar--streams)
      (ignore-errors (jsonrpc-request conn :shutdown nil :timeout 2))
      (ignore-errors (jsonrpc-notify conn :exit nil))
      (with-timeout (2 nil)
        (while (jsonrpc-running-p conn) (accept-process-output nil 0.05)))
      (ignore-errors (jsonrpc-shutdown conn))
      (setq llm-sidecar--connection nil))))

;;;; Answer buffers

(defvar llm-sidecar-answer-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "C-c C-k") #'llm-sidecar-cancel)
    (define-key map (kbd "TAB") #'llm-sidecar-toggle-reasoning)
    map)
  "Keys of answer buffers.")

(define-derived-mode llm-sidecar-answer-mode special-mode "LLM"
  "Mode of the buffers llm-sidecar streams answers into.
\\{llm-sidecar-answer-mode-map}"
  (setq-local truncate-lines nil)
  (visual-line-mode 1))

(defun llm-sidecar--set-status (st status)
  "Set the STATUS of stream ST."
  (setf (llm-sidecar--stream-status st) status)
  (let ((buf (llm-sidecar--stream-buffer st)))
    (when (buffer-live-p buf)
      (with-current-buffer buf
        (setq llm-sidecar-status status)
        (force-mode-line-update)))))

(defconst llm-sidecar--reasoning-header "Reasoning:\n")
(defconst llm-sidecar--reasoning-end "\n---\n")

(defun llm-sidecar--insert-at-end (buf text)
  "Insert TEXT at the end of BUF, keeping windows that showed the end at the end."
  (with-current-buffer buf
    (let ((inhibit-read-only t)
          (following (cl-remove-if-not (lambda (w) (>= (window-point w) (point-max)))
                                       (get-buffer-window-list buf nil t))))
      (save-excursion
        (goto-char (point-max))
        (insert text))
      (dolist (w following) (set-window-point w (point-max))))))

(defun llm-sidecar--on-reasoning (st text)
  "Add reasoning TEXT of ST to the block at the top of its buffer."
  (with-current-buffer (llm-sidecar--stream-buffer st)
    (let ((inhibit-read-only t))
      (save-excursion
        (unless (llm-sidecar--stream-reasoning-start st)
          (goto-char (point-min))
          (insert llm-sidecar--reasoning-header)
          (let ((start (point-marker)))
            (insert llm-sidecar--reasoning-end)
            (setf (llm-sidecar--stream-reasoning-start st) start)
            (setf (llm-sidecar--stream-reasoning-end st) (copy-marker start t))))
        (goto-char (llm-sidecar--stream-reasoning-end st))
        (insert text)))))

(defun llm-sidecar--fold-reasoning (st)
  "Hide the reasoning text of ST (the header stays; TAB on it shows it)."
  (let ((start (llm-sidecar--stream-reasoning-start st))
        (buf (llm-sidecar--stream-buffer st)))
    (when (and start (buffer-live-p buf))
      (with-current-buffer buf
        (unless (cl-some (lambda (o) (overlay-get o 'llm-sidecar-reasoning)) (overlays-at start))
          (let ((o (make-overlay start (llm-sidecar--stream-reasoning-end st))))
            (overlay-put o 'llm-sidecar-reasoning t)
            (overlay-put o 'invisible t)
            (overlay-put o 'before-string (propertize "[…]" 'face 'shadow))))))))

(defun llm-sidecar-toggle-reasoning ()
  "Show or hide the reasoning block of this answer."
  (interactive)
  (dolist (o (overlays-in (point-min) (point-max)))
    (when (overlay-get o 'llm-sidecar-reasoning)
      (overlay-put o 'invisible (not (overlay-get o 'invisible)))
      (overlay-put o 'before-string (and (overlay-get o 'invisible) (propertize "[…]" 'face 'shadow))))))

(defun llm-sidecar--on-notification (_conn method params)
  "Handle a notification METHOD with PARAMS from the sidecar."
  (pcase method
    ('llm/chunk
     (let* ((id (plist-get params :streamId))
            (st (gethash (if (stringp id) id (format "%s" id)) llm-sidecar--streams))
            (text (plist-get params :text)))
       (when (and st (eq (llm-sidecar--stream-status st) 'streaming)
                  (buffer-live-p (llm-sidecar--stream-buffer st))
                  (stringp text) (not (string-empty-p text)))
         (cl-incf (llm-sidecar--stream-chunks st))
         (if (equal (plist-get params :kind) "reasoning")
             (progn
               (setf (llm-sidecar--stream-reasoning st) (concat (llm-sidecar--stream-reasoning st) text))
               (llm-sidecar--on-reasoning st text))
           (llm-sidecar--fold-reasoning st)
           (setf (llm-sidecar--stream-text st) (concat (llm-sidecar--stream-text st) text))
           (llm-sidecar--insert-at-end (llm-sidecar--stream-buffer st) text)))))
    ('window/showMessage
     (llm-sidecar--error "llm-sidecar: %s" (plist-get params :message)))))

;;;; Errors

(defun llm-sidecar--one-line (s max)
  "S on one line, at most MAX characters."
  (let ((s (replace-regexp-in-string "[ \t\n\r]+" " " (format "%s" s))))
    (if (> (length s) max) (concat (substring s 0 max) "…") s)))

(defun llm-sidecar-format-error (err)
  "The text shown for ERR, a JSON-RPC error plist from the sidecar."
  (let* ((data (plist-get err :data))
         (msg (concat "llm-sidecar: " (or (plist-get err :message) (format "error %s" (plist-get err :code))))))
    (when (listp data)
      (seq-doseq (p (or (plist-get data :problems) []))
        (setq msg (concat msg (format "\n  %s: %s" (plist-get p :field) (plist-get p :message)))))
      (let ((sugg (plist-get data :suggestions)))
        (when (and (equal (plist-get data :kind) "no_match") (> (length sugg) 0))
          (let ((s (elt sugg 0)))
            (setq msg (concat msg "\nsuggested path: " (plist-get s :path)))
            (when (stringp (plist-get s :sampleText))
              (setq msg (concat msg (format " (gives \"%s\")" (llm-sidecar--one-line (plist-get s :sampleText) 60)))))))))
    msg))

;;;; Commands

(defun llm-sidecar--selection (params)
  "PARAMS (a plist) with the chat settings added.
The configuration is sent first if it changed."
  (llm-sidecar--sync-configuration)
  (if llm-sidecar-settings
      (append params (list :settings (llm-sidecar--resolve llm-sidecar-settings "llm-sidecar-settings")))
    params))

(defun llm-sidecar--answer-buffer ()
  "*llm* when it is free, else a new *llm*<N>."
  (let ((existing (get-buffer "*llm*")))
    (if (and existing (not (eq (buffer-local-value 'llm-sidecar-status existing) 'streaming)))
        existing
      (generate-new-buffer "*llm*"))))

;;;###autoload
(defun llm-sidecar-ask (prompt &optional context)
  "Ask the LLM PROMPT and stream the answer into a *llm* buffer.
Interactively with an active region, the region is sent after the
prompt in a fenced block; from Lisp, CONTEXT is that text.
Returns the answer buffer."
  (interactive
   (list (read-string "Ask LLM: ")
         (and (use-region-p) (buffer-substring-no-properties (region-beginning) (region-end)))))
  (let* ((lang (and context (string-remove-suffix "-mode" (symbol-name major-mode))))
         (content (if (and context (not (string-empty-p context)))
                      (concat (if (string-empty-p prompt) "" (concat prompt "\n\n"))
                              "```" (or lang "") "\n" context "\n```")
                    prompt)))
    (if (string-blank-p content)
        (progn (llm-sidecar--error "llm-sidecar: nothing to ask") nil)
      (let ((conn (llm-sidecar--start)))
        (when conn
          (let* ((n (cl-incf llm-sidecar--count))
                 (id (format "emacs-%d-%d" (emacs-pid) n))
                 (messages (vconcat (and llm-sidecar-system-prompt
                                         (list (list :role "system" :content llm-sidecar-system-prompt)))
                                    (list (list :role "user" :content content))))
                 ;; before any buffer is made: a missing key is a `user-error'
                 (params (llm-sidecar--selection (list :streamId id :messages messages)))
                 (buf (llm-sidecar--answer-buffer))
                 (st (llm-sidecar--make-stream :id id :n n :buffer buf :connection conn
                                               :unkeyed-host (and llm-sidecar-settings
                                                                  llm-sidecar-auth-unkeyed-host))))
            (with-current-buffer buf
              (let ((inhibit-read-only t)) (erase-buffer))
              (remove-overlays)
              (llm-sidecar-answer-mode)
              (setq llm-sidecar--stream st)
              ;; Killing the buffer cancels its request.
              (add-hook 'kill-buffer-hook #'llm-sidecar--cancel-on-kill nil t)
              (setq-local header-line-format (concat "LLM: " (llm-sidecar--one-line prompt 80))))
            (puthash id st llm-sidecar--streams)
            (llm-sidecar--set-status st 'streaming)
            (display-buffer buf)
            (setf (llm-sidecar--stream-request-id st)
                  (llm-sidecar--request conn 'llm/complete params
                                        :timeout nil
                                        :success-fn (lambda (result) (llm-sidecar--on-done st nil result))
                                        :error-fn (lambda (err) (llm-sidecar--on-done st err nil))))
            buf))))))

(defun llm-sidecar--cancel-on-kill ()
  "Cancel the request of the answer buffer being killed."
  (when (eq llm-sidecar-status 'streaming)
    (let ((inhibit-message t)) (llm-sidecar-cancel))))

(defun llm-sidecar--on-done (st err result)
  "The response of ST's request: ERR or RESULT."
  (when (and (eq (llm-sidecar--stream-status st) 'streaming)
             ;; jsonrpc.el fails the requests of a dead process ("Server died") just before
             ;; `llm-sidecar--on-shutdown', which reports the exit.
             (not (and err (eql (plist-get err :code) -1)
                       (not (jsonrpc-running-p (llm-sidecar--stream-connection st))))))
    (if err
        (progn
          (setf (llm-sidecar--stream-error st) err)
          (llm-sidecar--set-status st 'error)
          (llm-sidecar--error "%s%s%s" (llm-sidecar-format-error err)
                              (llm-sidecar--no-key-hint err (llm-sidecar--stream-unkeyed-host st))
                              (if (string-empty-p (llm-sidecar--stream-text st)) ""
                                (format "\n(the partial answer is kept in %s)"
                                        (buffer-name (llm-sidecar--stream-buffer st))))))
      (setf (llm-sidecar--stream-result st) result)
      (llm-sidecar--fold-reasoning st)
      (llm-sidecar--set-status st 'done))))

(defun llm-sidecar--no-key-hint (err host)
  "A line saying no key was sent to HOST, when ERR is the server refusing it."
  (let ((data (plist-get err :data)))
    (if (and host (listp data) (equal (plist-get data :kind) "http_status")
             (memql (plist-get data :status) '(401 403)))
        (concat "\n" (llm-sidecar-auth-no-key-hint host))
      "")))

;;;###autoload
(defun llm-sidecar-cancel (&optional all)
  "Cancel this buffer's answer if it streams, else the latest one.
With ALL (the prefix argument) every one.  The text received so far
stays.  Returns how many were cancelled."
  (interactive "P")
  (let ((targets nil) (current (and (eq llm-sidecar-status 'streaming) llm-sidecar--stream)) (latest nil))
    (maphash (lambda (_id st)
               (when (eq (llm-sidecar--stream-status st) 'streaming)
                 (push st targets)
                 (when (or (null latest) (> (llm-sidecar--stream-n st) (llm-sidecar--stream-n latest)))
                   (setq latest st))))
             llm-sidecar--streams)
    (unless all (setq targets (if current (list current) (and latest (list latest)))))
    (if (null targets)
        (progn (when (called-interactively-p 'any) (message "llm-sidecar: no answer is streaming")) 0)
      (dolist (st targets)
        (when (and (llm-sidecar-running-p) (llm-sidecar--stream-request-id st))
          (jsonrpc-notify llm-sidecar--connection '$/cancelRequest
                          (list :id (llm-sidecar--stream-request-id st))))
        (llm-sidecar--set-status st 'cancelled)
        (llm-sidecar--fold-reasoning st))
      (message "llm-sidecar: cancelled (%d)" (length targets))
      (length targets))))

;;;###autoload
(defun llm-sidecar-test-connection ()
  "Send one test completion with `llm-sidecar-settings' and show the report."
  (interactive)
  (let ((conn (llm-sidecar--start)))
    (when conn
      (jsonrpc-async-request
       conn 'llm/testConnection (llm-sidecar--selection (list :messages [(:role "user" :content "Say hello.")]))
       :timeout 120
       :success-fn
       (lambda (r)
         (if (eq (plist-get r :ok) t)
             (message "%s" (concat "llm-sidecar: connection OK\n"
                                   (format "  HTTP %s, %s (read as %s)\n" (plist-get r :status)
                                           (plist-get r :contentType) (plist-get r :detectedResponseType))
                                   (format "  first byte %s ms, total %s ms" (plist-get r :firstByteMs)
                                           (plist-get r :totalMs))
                                   (if (stringp (plist-get r :sampleText))
                                       (concat "\n  sample: " (llm-sidecar--one-line (plist-get r :sampleText) 120))
                                     "")))
           (let ((msg (replace-regexp-in-string
                       "\\`llm-sidecar: " "llm-sidecar: connection test failed: "
                       (llm-sidecar-format-error (plist-get r :error))))
                 (sugg (plist-get r :suggestions)))
             (when (and (> (length sugg) 0) (not (string-match-p "suggested path" msg)))
               (setq msg (concat msg "\nsuggested path: " (plist-get (elt sugg 0) :path))))
             (llm-sidecar--error "%s" msg))))
       :error-fn (lambda (err) (llm-sidecar--error "%s" (llm-sidecar-format-error err)))))))

;;;###autoload
(defun llm-sidecar-presets ()
  "List the sidecar's built-in presets in *llm-sidecar presets*."
  (interactive)
  (let ((conn (llm-sidecar--start)))
    (when conn
      (jsonrpc-async-request
       conn 'llm/presets (make-hash-table)
       :success-fn
       (lambda (r)
         (with-current-buffer (get-buffer-create "*llm-sidecar presets*")
           (let ((inhibit-read-only t))
             (erase-buffer)
             (insert "llm-sidecar presets: use one as ((preset . \"<name>\")); the key from auth-source "
                     "(machine <host> password <key>) or (customEngineTokenEnv . \"NAME\")\n\n")
             (seq-doseq (p (plist-get r :presets))
               (let ((aliases (plist-get p :aliases))
                     (url (or (plist-get p :urlHint) (plist-get (plist-get p :settings) :customEngineServer))))
                 (insert (plist-get p :name)
                         (if (> (length aliases) 0) (format " (%s)" (mapconcat #'identity aliases ", ")) "")
                         ;; code completion presets go in `llm-sidecar-completion-settings'
                         (if (equal (plist-get p :use) "completion") " [code completion]" "")
                         "\n")
                 (when (stringp (plist-get p :description))
                   (insert "    " (llm-sidecar--one-line (plist-get p :description) 200) "\n"))
                 (when (stringp url) (insert "    " url "\n")))))
           (special-mode)
           (display-buffer (current-buffer))))
       :error-fn (lambda (err) (llm-sidecar--error "%s" (llm-sidecar-format-error err)))))))

;;;; Code completion (llm-sidecar-completion.el)

;;;###autoload
(progn
  (autoload 'llm-sidecar-completion-mode "llm-sidecar-completion" "Ghost-text code completion." t)
  (autoload 'llm-sidecar-complete "llm-sidecar-completion" "Request a code completion at point now." t)
  (autoload 'llm-sidecar-accept "llm-sidecar-completion" "Insert the suggestion shown at point." t))

(provide 'llm-sidecar)
;;; llm-sidecar.el ends here
