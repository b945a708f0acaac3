;;; llm-sidecar-auth.el --- API keys for llm-sidecar from auth-source  -*- lexical-binding: t; -*-

;; URL: https://github.com/OWNER/llm-sidecar

;;; Commentary:

;; Where the keys of llm-sidecar.el's requests come from.  A settings alist (the chat settings, each
;; `customLlms' entry, the completion settings) is given its token here, just before it is sent:
;;
;; - a key source the sidecar reads itself (customEngineTokenEnv, customEngineTokenCommand, an entry's
;;   auth.tokenEnv / auth.tokenCommand) is left alone: the key never passes through Emacs;
;; - else the first `auth-source' entry whose host is the server URL's host (and port, when the entry names
;;   one; login `llm-sidecar-auth-source-user' when set), as in ~/.authinfo.gpg:
;;       machine api.deepseek.com password sk-...
;; - else a plain customEngineToken (or auth.token) in the settings, with a warning, once, that it is stored
;;   in plain text.
;;
;; A `customHeaders' value whose header name looks like a key (api-key, x-api-key, ...) is a secret too: the
;; symbol `auth-source' as its value reads it from auth-source (login = the header name, else the host's
;; entry); {env: NAME} / {command: [argv]} leave it to the sidecar; a plain string is sent with a warning, once.
;; A key found for one host is only ever put into settings whose server is that host.

;;; Code:

(require 'auth-source)
(require 'cl-lib)
(require 'json)
(require 'subr-x)
(require 'url-parse)

(defcustom llm-sidecar-auth-source t
  "Non-nil: read API keys from `auth-source' by the LLM server's host.
An entry such as \"machine api.deepseek.com password sk-...\" in
~/.authinfo.gpg gives the key of every server on that host; an
entry that names a port only serves that port.  Used when the
settings name no token of their own (customEngineToken,
customEngineTokenEnv, customEngineTokenCommand)."
  :type 'boolean
  :group 'llm-sidecar)

(defcustom llm-sidecar-auth-source-user nil
  "The login of the `auth-source' entries to use; nil: any login."
  :type '(choice (const :tag "Any" nil) string)
  :group 'llm-sidecar)

(defconst llm-sidecar-auth--key-header-re
  "key\\|token\\|secret\\|auth\\|passw\\|cookie\\|credential"
  "Header names (case-insensitive) whose values are treated as keys.")

(defvar llm-sidecar-auth--warned (make-hash-table :test #'equal)
  "The plain-text warnings already given (each is given once).")

(defvar llm-sidecar-auth-unkeyed-host nil
  "The host of the settings last resolved when they got no key at all, else nil.")

;;;; Alists with string or symbol keys

(defun llm-sidecar-auth--alist-p (value)
  "Non-nil when VALUE is an alist with string or symbol keys."
  (and (consp value)
       (cl-every (lambda (e) (and (consp e) (or (stringp (car e)) (and (symbolp (car e)) (car e))))) value)))

(defun llm-sidecar-auth--key-name (key)
  "KEY (a string or symbol) as a string."
  (if (symbolp key) (symbol-name key) key))

(defun llm-sidecar-auth--get (alist key)
  "The value of KEY (a string) in ALIST, whose keys are strings or symbols."
  (cdr (cl-find-if (lambda (e) (and (consp e) (equal (llm-sidecar-auth--key-name (car e)) key))) alist)))

(defun llm-sidecar-auth--put (alist key value)
  "A copy of ALIST with KEY (a string) set to VALUE.
VALUE replaces the pair of that name, if any."
  (let* ((found nil)
         (out (mapcar (lambda (e)
                       (if (and (consp e) (equal (llm-sidecar-auth--key-name (car e)) key))
                           (progn (setq found t) (cons (car e) value))
                         e))
                     alist)))
    (if found out (append out (list (cons key value))))))

(defun llm-sidecar-auth--string-set-p (value)
  "Non-nil when VALUE is a non-empty string."
  (and (stringp value) (not (string-empty-p value))))

;;;; auth-source

(defun llm-sidecar-auth--host-port (url)
  "The (HOST PORT SCHEME) of URL, or nil when it has no host."
  (when (stringp url)
    (let* ((u (url-generic-parse-url url))
           (host (url-host u)))
      (when (and host (not (string-empty-p host)) (not (string-match-p "[{}$<>]" host)))
        (list (downcase host) (url-port u) (url-type u))))))

(defun llm-sidecar-auth-lookup (url &optional user exclude-users)
  "The key `auth-source' holds for the host of URL, or nil.
USER: only entries with that login (default
`llm-sidecar-auth-source-user').  Entries whose login is in
EXCLUDE-USERS are skipped.  An entry for another host is never
returned, even from a backend that answers loosely."
  (when-let* ((hp (and llm-sidecar-auth-source (llm-sidecar-auth--host-port url))))
    (pcase-let* ((`(,host ,port ,scheme) hp)
                 (user (or user llm-sidecar-auth-source-user))
                 (found (apply #'auth-source-search
                               :host host
                               :port (delete-dups (delq nil (list (and port (number-to-string port)) scheme)))
                               :require '(:secret)
                               :max 10
                               (and user (list :user user)))))
      (cl-loop for entry in found
               for entry-host = (plist-get entry :host)
               for entry-user = (plist-get entry :user)
               for secret = (plist-get entry :secret)
               when (and (or (null entry-host) (equal (downcase (format "%s" entry-host)) host))
                         (not (and entry-user (member entry-user exclude-users))))
               return (let ((s (if (functionp secret) (funcall secret) secret)))
                        (and (llm-sidecar-auth--string-set-p s) s))))))

;;;; Warnings

(defun llm-sidecar-auth--warn-once (id fmt &rest args)
  "Warn with FMT and ARGS unless the warning ID was given already."
  (unless (gethash id llm-sidecar-auth--warned)
    (puthash id t llm-sidecar-auth--warned)
    (display-warning 'llm-sidecar (apply #'format-message fmt args) :warning)))

(defun llm-sidecar-auth--warn-plain-token (field host)
  "Warn once that FIELD holds the key of HOST in plain text."
  (llm-sidecar-auth--warn-once
   (list 'token field host)
   "llm-sidecar: the key in %s is stored in plain text.  Put it in auth-source instead \
(a line \"machine %s password <key>\" in ~/.authinfo.gpg), or let the sidecar read it: \
customEngineTokenEnv \"NAME\" or customEngineTokenCommand [\"pass\" \"show\" \"...\"]"
   field (or host "<the server's host>")))

;;;; customHeaders

(defun llm-sidecar-auth--key-header-p (name)
  "Non-nil when the header NAME carries a key."
  (let ((case-fold-search t))
    (string-match-p llm-sidecar-auth--key-header-re name)))

(defun llm-sidecar-auth--headers (headers url field)
  "HEADERS (an alist) with their `auth-source' values read for URL.
FIELD names where they are, for warnings and errors."
  (mapcar
   (lambda (h)
     (let ((name (llm-sidecar-auth--key-name (car h)))
           (value (cdr h)))
       (cond
        ((not (llm-sidecar-auth--key-header-p name)) h)
        ((eq value 'auth-source)
         (let ((key (or (llm-sidecar-auth-lookup url name) (llm-sidecar-auth-lookup url))))
           (unless key
             (user-error "llm-sidecar: %s.%s: no auth-source entry for %s (add \"machine %s login %s password <key>\" to ~/.authinfo.gpg)"
                         field name (or (car (llm-sidecar-auth--host-port url)) url)
                         (or (car (llm-sidecar-auth--host-port url)) "<host>") name))
           (cons (car h) key)))
        ((llm-sidecar-auth--string-set-p value)
         (llm-sidecar-auth--warn-once
          (list 'header field name)
          "llm-sidecar: the header %s in %s holds a key in plain text.  Use (%s . auth-source) with an \
auth-source entry \"machine <host> login %s password <key>\", or let the sidecar read it: \
((env . \"NAME\")) or ((command . [\"pass\" \"show\" \"...\"])); or put the key in auth-source and set \
tokenHeader to \"%s\""
          name field name name name)
         h)
        (t h))))
   headers))

(defun llm-sidecar-auth--request-format (format url field)
  "FORMAT (an alist or a JSON string) with its customHeaders resolved for URL.
FIELD names it in messages.  A JSON string is only checked (it
cannot name auth-source), and returned as it was."
  (cond
   ((llm-sidecar-auth--alist-p format)
    (let ((headers (llm-sidecar-auth--get format "customHeaders")))
      (if (llm-sidecar-auth--alist-p headers)
          (llm-sidecar-auth--put format "customHeaders"
                                 (llm-sidecar-auth--headers headers url (concat field ".customHeaders")))
        format)))
   ((stringp format)
    (let ((parsed (ignore-errors (json-parse-string format :object-type 'alist))))
      (when (llm-sidecar-auth--alist-p parsed)
        (let ((headers (llm-sidecar-auth--get parsed "customHeaders")))
          (when (llm-sidecar-auth--alist-p headers)
            (llm-sidecar-auth--headers (cl-remove-if (lambda (h) (eq (cdr h) 'auth-source)) headers)
                                       url (concat field ".customHeaders")))))
      format))
   (t format)))

;;;; Settings

(defun llm-sidecar-auth--entry-p (settings)
  "Non-nil when SETTINGS is an AutoDev 2.x customLlms entry (url, auth)."
  (and (llm-sidecar-auth--get settings "url")
       (not (llm-sidecar-auth--get settings "customEngineServer"))))

(defun llm-sidecar-auth-resolve (settings &optional url-function field)
  "SETTINGS (an alist in any settings form) with its keys filled in.
URL-FUNCTION, given SETTINGS without a server URL of their own (a
preset), returns the URL of the server.  FIELD names SETTINGS in
warnings (default \"llm-sidecar-settings\").  Anything that is not
an alist is returned as it is."
  (if (not (llm-sidecar-auth--alist-p settings))
      settings
    (let* ((field (or field "llm-sidecar-settings"))
           (entry (llm-sidecar-auth--entry-p settings))
           (url (or (llm-sidecar-auth--get settings (if entry "url" "customEngineServer"))
                    (and url-function (funcall url-function settings))))
           (host (car (llm-sidecar-auth--host-port url)))
           (auth (and entry (llm-sidecar-auth--get settings "auth")))
           (auth (if (llm-sidecar-auth--alist-p auth) auth nil))
           (plain (if entry (llm-sidecar-auth--get auth "token")
                    (llm-sidecar-auth--get settings "customEngineToken")))
           (own-source (if entry
                           (or (llm-sidecar-auth--get auth "tokenEnv") (llm-sidecar-auth--get auth "tokenCommand"))
                         (or (llm-sidecar-auth--get settings "customEngineTokenEnv")
                             (llm-sidecar-auth--get settings "customEngineTokenCommand"))))
           (out settings))
      ;; customHeaders first: their names are not the token's login
      (dolist (key '("customEngineRequestFormat" "requestFormat"))
        (let ((fmt (llm-sidecar-auth--get out key)))
          (when fmt
            (setq out (llm-sidecar-auth--put out key (llm-sidecar-auth--request-format
                                                      fmt url (concat field "." key)))))))
      (let ((custom (llm-sidecar-auth--get out "customRequest")))
        (when (llm-sidecar-auth--alist-p custom)
          (let ((headers (llm-sidecar-auth--get custom "headers")))
            (when (llm-sidecar-auth--alist-p headers)
              (setq out (llm-sidecar-auth--put
                         out "customRequest"
                         (llm-sidecar-auth--put custom "headers"
                                                (llm-sidecar-auth--headers
                                                 headers url (concat field ".customRequest.headers")))))))))
      (setq llm-sidecar-auth-unkeyed-host nil)
      (unless own-source
        (let* ((header-names (llm-sidecar-auth--header-names out))
               (key (llm-sidecar-auth-lookup url nil header-names)))
          (cond
           (key
            (setq out (if entry
                          (llm-sidecar-auth--put out "auth" (llm-sidecar-auth--put (or auth '((type . "Bearer")))
                                                                                    "token" key))
                        (llm-sidecar-auth--put out "customEngineToken" key))))
           ((llm-sidecar-auth--string-set-p plain)
            (llm-sidecar-auth--warn-plain-token
             (concat field (if entry ".auth.token" ".customEngineToken")) host))
           ((not header-names)
            (setq llm-sidecar-auth-unkeyed-host host)))))
      out)))

(defun llm-sidecar-auth-no-key-hint (host)
  "What to tell when the server of HOST refused a request sent without a key."
  (when host
    (format-message "no key was sent to %s: nothing in auth-source for it (add \"machine %s password <key>\" to ~/.authinfo.gpg) and no customEngineTokenEnv / customEngineTokenCommand in the settings"
                    host host)))

(defun llm-sidecar-auth--header-names (settings)
  "The names of the key-like customHeaders of SETTINGS."
  (let (names)
    (dolist (fmt (list (llm-sidecar-auth--get settings "customEngineRequestFormat")
                       (llm-sidecar-auth--get settings "requestFormat")))
      (when (llm-sidecar-auth--alist-p fmt)
        (let ((headers (llm-sidecar-auth--get fmt "customHeaders")))
          (when (llm-sidecar-auth--alist-p headers)
            (dolist (h headers)
              (let ((name (llm-sidecar-auth--key-name (car h))))
                (when (llm-sidecar-auth--key-header-p name) (push name names))))))))
    names))

(provide 'llm-sidecar-auth)
;;; llm-sidecar-auth.el ends here
