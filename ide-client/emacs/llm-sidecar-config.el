;;; llm-sidecar-config.el --- Settings and configuration for llm-sidecar  -*- lexical-binding: t; -*-

;; URL: https://github.com/OWNER/llm-sidecar

;;; Commentary:

;; The settings side of llm-sidecar.el: alists to JSON, each settings alist with its key (through
;; llm-sidecar-auth.el), and the sidecar's configuration (AutoDev 2.x's customLlms list, profiles and the code
;; completion settings), sent with `initialize' and again with `workspace/didChangeConfiguration' whenever one of
;; the variables changes.

;;; Code:

(require 'cl-lib)
(require 'jsonrpc)
(require 'seq)
(require 'llm-sidecar-auth)

(defvar llm-sidecar--connection)
(declare-function llm-sidecar-running-p "llm-sidecar" ())
(declare-function llm-sidecar--error "llm-sidecar" (fmt &rest args))

(defcustom llm-sidecar-custom-llms nil
  "AutoDev 2.x's `customLlms' list: a list of alists, one per server.
Each entry has name, url, auth ((type . \"Bearer\")), requestFormat,
responseFormat and modelType (\"Default\", \"Completion\", \"Plan\", ...):
  (((name . \"DeepSeek\")
    (url . \"https://api.deepseek.com/v1/chat/completions\")
    (auth . ((type . \"Bearer\")))
    (requestFormat
     . \"{\\\"customFields\\\": {\\\"model\\\": \\\"deepseek-chat\\\"}}\")
    (responseFormat . \"$.choices[0].delta.content\")
    (modelType . \"Default\")))
Without `llm-sidecar-settings', chat uses the Default entry; ghost
text uses the Completion entry unless `llm-sidecar-completion-settings'
says otherwise.  A JSON string (as AutoDev stores it) works too.
Keys come from auth-source by each entry's host (see
`llm-sidecar-auth-source')."
  :type '(choice (repeat (alist :key-type (choice string symbol) :value-type sexp)) string)
  :group 'llm-sidecar)

(defcustom llm-sidecar-profiles nil
  "Named settings: an alist of (NAME . SETTINGS), SETTINGS in any form."
  :type '(alist :key-type string :value-type sexp)
  :group 'llm-sidecar)

(defcustom llm-sidecar-completion-settings nil
  "The settings of code completion (ghost text).
Either settings in the chat form with a fim object:
  ((preset . \"ollama-fim\") (model . \"qwen2.5-coder:1.5b\"))
  ((customEngineServer . \"http://localhost:8080/v1/completions\")
   (fim . ((template . \"qwen\") (maxTokens . 64))))
or the name of a `llm-sidecar-custom-llms' entry: ((llm . \"name\")),
or of a profile: ((profile . \"name\")).  nil: the Completion entry
of `llm-sidecar-custom-llms'."
  :type '(alist :key-type (choice string symbol) :value-type sexp)
  :group 'llm-sidecar)

;;;; JSON

(defun llm-sidecar--json (value)
  "VALUE as something `json-serialize' takes.
VALUE holds alists, keyword plists, vectors, strings and numbers."
  (cond
   ((hash-table-p value) value)
   ((and (consp value) (keywordp (car value))) ; a plist
    (let ((h (make-hash-table :test #'equal)))
      (cl-loop for (k v) on value by #'cddr
               do (puthash (substring (symbol-name k) 1) (llm-sidecar--json v) h))
      h))
   ((and (consp value) (cl-every (lambda (e) (and (consp e) (or (stringp (car e)) (symbolp (car e))))) value))
    (let ((h (make-hash-table :test #'equal)))
      ;; the first pair of a name wins, as with `alist-get'
      (dolist (e value)
        (let ((k (if (symbolp (car e)) (symbol-name (car e)) (car e))))
          (when (eq (gethash k h 'llm-sidecar--unset) 'llm-sidecar--unset)
            (puthash k (llm-sidecar--json (cdr e)) h))))
      h))
   ((consp value) (vconcat (mapcar #'llm-sidecar--json value)))
   ((vectorp value) (vconcat (mapcar #'llm-sidecar--json value)))
   (t value)))

;;;; Settings with their keys

(defvar llm-sidecar--presets nil "The running sidecar's presets (plists), once asked for.")

(defun llm-sidecar--preset-url (settings)
  "The server URL of the preset SETTINGS name, from the running sidecar, or nil."
  (let ((name (llm-sidecar-auth--get settings "preset")))
    (when (and (stringp name) (llm-sidecar-running-p))
      (unless llm-sidecar--presets
        (setq llm-sidecar--presets
              (or (append (plist-get (ignore-errors
                                       (jsonrpc-request llm-sidecar--connection 'llm/presets (make-hash-table)
                                                        :timeout 10))
                                     :presets)
                          nil)
                  'none)))
      (when (consp llm-sidecar--presets)
        (cl-loop for p in llm-sidecar--presets
                 when (or (equal (plist-get p :name) name) (seq-contains-p (plist-get p :aliases) name))
                 return (or (plist-get (plist-get p :settings) :customEngineServer) (plist-get p :urlHint)))))))

(defun llm-sidecar--resolve (settings field)
  "SETTINGS (the alist of the variable FIELD names) with their keys, as JSON.
See `llm-sidecar-auth-resolve'."
  (llm-sidecar--json (llm-sidecar-auth-resolve settings #'llm-sidecar--preset-url field)))

;;;; Configuration: customLlms, profiles and completion, sent once and again when they change

(defvar llm-sidecar--configuration-sent nil
  "The configuration variables' values when they were last sent, or nil.")

(defun llm-sidecar--configuration-values ()
  "The values the configuration is made of, to tell when it changed."
  (list llm-sidecar-custom-llms llm-sidecar-profiles llm-sidecar-completion-settings))

(defun llm-sidecar--configuration ()
  "The sidecar's configuration, with the keys filled in.
Its customLlms, profiles and completion."
  (let ((h (make-hash-table :test #'equal)))
    (puthash "customLlms"
             (if (stringp llm-sidecar-custom-llms)
                 llm-sidecar-custom-llms
               (vconcat (cl-loop for entry in llm-sidecar-custom-llms
                                 for i from 0
                                 collect (llm-sidecar--resolve
                                          entry (format "llm-sidecar-custom-llms[%s]"
                                                        (or (llm-sidecar-auth--get entry "name") i))))))
             h)
    (let ((profiles (make-hash-table :test #'equal)))
      (dolist (p llm-sidecar-profiles)
        (let ((name (if (symbolp (car p)) (symbol-name (car p)) (car p))))
          (puthash name (llm-sidecar--resolve (cdr p) (format "llm-sidecar-profiles[%s]" name)) profiles)))
      (puthash "profiles" profiles h))
    ;; null (nil) takes back completion settings sent before
    (puthash "completion" (and llm-sidecar-completion-settings
                               (llm-sidecar--resolve llm-sidecar-completion-settings
                                                     "llm-sidecar-completion-settings"))
             h)
    h))

(defun llm-sidecar--report-problems (problems)
  "Warn about the configuration PROBLEMS the sidecar found."
  (when (> (length problems) 0)
    (display-warning 'llm-sidecar
                     (concat "llm-sidecar: configuration problems:"
                             (mapconcat (lambda (p) (format "\n  %s: %s" (plist-get p :field) (plist-get p :message)))
                                        problems "")))))

(defun llm-sidecar--initialize (conn)
  "Send `initialize' with the configuration to CONN, then `initialized'."
  (setq llm-sidecar--configuration-sent nil)
  (let ((values (copy-tree (llm-sidecar--configuration-values))))
    (condition-case err
        (let ((result (jsonrpc-request
                       conn 'initialize
                       (list :processId (emacs-pid)
                             :clientInfo (list :name "llm-sidecar.el" :version "0.2.0")
                             :initializationOptions (llm-sidecar--configuration))
                       :timeout 15)))
          (setq llm-sidecar--configuration-sent values)
          (llm-sidecar--report-problems (plist-get (plist-get result :configuration) :problems))
          (jsonrpc-notify conn 'initialized (make-hash-table)))
      (user-error (signal (car err) (cdr err)))
      (error (llm-sidecar--error "llm-sidecar: initialize failed: %s" (error-message-string err))))))

(defun llm-sidecar--sync-configuration ()
  "Send the configuration again when it changed since it was last sent."
  (when (and (llm-sidecar-running-p)
             (not (equal llm-sidecar--configuration-sent (llm-sidecar--configuration-values))))
    (let ((values (copy-tree (llm-sidecar--configuration-values))))
      (jsonrpc-notify llm-sidecar--connection 'workspace/didChangeConfiguration
                      (list :settings (llm-sidecar--configuration)))
      (setq llm-sidecar--configuration-sent values))))

(defvar llm-sidecar--sync-timer nil)

(defun llm-sidecar--configuration-changed (_symbol _newval operation _where)
  "A configuration variable changed by OPERATION: send it soon.
Soon: once the change is made."
  (when (and (memq operation '(set makunbound)) (llm-sidecar-running-p) (not llm-sidecar--sync-timer))
    (setq llm-sidecar--sync-timer
          (run-at-time 0 nil (lambda ()
                               (setq llm-sidecar--sync-timer nil)
                               (with-demoted-errors "llm-sidecar: %S" (llm-sidecar--sync-configuration)))))))

(dolist (v '(llm-sidecar-custom-llms llm-sidecar-profiles llm-sidecar-completion-settings))
  (add-variable-watcher v #'llm-sidecar--configuration-changed))

(provide 'llm-sidecar-config)
;;; llm-sidecar-config.el ends here
