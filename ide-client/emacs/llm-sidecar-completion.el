;;; llm-sidecar-completion.el --- Ghost-text code completion through llm-sidecar  -*- lexical-binding: t; -*-

;; URL: https://github.com/OWNER/llm-sidecar

;;; Commentary:

;; Inline code completion shown as ghost text after point, from the sidecar's `llm/inlineCompletion'
;; (the text before and after point in, a suggestion out).
;;
;;   M-x llm-sidecar-completion-mode   request a suggestion when typing pauses
;;                                      (`llm-sidecar-completion-delay', 0.3 s)
;;   M-x llm-sidecar-complete          request one now
;;   M-x llm-sidecar-accept            insert the suggestion (TAB in the mode while one is shown)
;;
;; One request at a time per buffer: a newer one cancels the one in flight ($/cancelRequest, and the sidecar
;; closes its connection to the server).  No request while the region is active or a completion popup is up.
;; The suggestion is an overlay's `after-string' at point, so it is never part of the text: any edit that does
;; not type its next characters, or moving point, removes it; typing them keeps the rest shown.  The first
;; failure of a request is shown in the echo area; later ones only go to `llm-sidecar-completion-log' until
;; the settings change.

;;; Code:

(require 'cl-lib)
(require 'subr-x)
(require 'llm-sidecar)

(defcustom llm-sidecar-completion-delay 0.3
  "Seconds of idle time after an edit before a suggestion is requested."
  :type 'number
  :group 'llm-sidecar)

(defcustom llm-sidecar-completion-context-chars 16000
  "At most this many characters before point (and half as many after) are sent.
The sidecar cuts them further to its fim prefixLines/suffixLines."
  :type 'integer
  :group 'llm-sidecar)

(defcustom llm-sidecar-completion-inhibit-predicates
  '(use-region-p llm-sidecar--popup-p)
  "No suggestion is requested while one of these functions returns non-nil."
  :type '(repeat function)
  :group 'llm-sidecar)

(defface llm-sidecar-ghost-text '((t :inherit shadow))
  "The face of the suggested text."
  :group 'llm-sidecar)

(defvar-local llm-sidecar-completion-status nil
  "What this buffer's completion is doing: nil, `requesting', `shown' or `error'.")

(defvar-local llm-sidecar--ghost nil
  "The overlay showing the suggestion, or nil.")

(defvar-local llm-sidecar--ghost-text nil
  "The part of the suggestion not typed yet.")

(defvar-local llm-sidecar--pending nil
  "The request in flight: (SEQ ID CONNECTION POSITION), or nil.")

(defvar-local llm-sidecar--request-seq 0
  "Requests made in this buffer; answers to an older one are dropped.")

(defvar-local llm-sidecar--edited nil
  "Non-nil when the buffer changed since the last idle request was scheduled.")

(defvar-local llm-sidecar--inserting nil
  "Non-nil while a suggestion is being inserted.")

(defvar llm-sidecar--idle-timer nil "The idle timer of the next automatic request.")

(defvar llm-sidecar-completion-mode)

(defvar llm-sidecar--error-shown-for 'none
  "The settings a completion error was last shown for (later ones go to the log).")

;;;; Log

(defun llm-sidecar-completion-log ()
  "Show the log of completion errors."
  (interactive)
  (display-buffer (get-buffer-create "*llm-sidecar completion*")))

(defun llm-sidecar--completion-log (fmt &rest args)
  "Add a line FMT with ARGS to the completion log."
  (with-current-buffer (get-buffer-create "*llm-sidecar completion*")
    (let ((inhibit-read-only t))
      (goto-char (point-max))
      (insert (format-time-string "%F %T ") (apply #'format fmt args) "\n"))))

(defun llm-sidecar--settings-values ()
  "The settings a completion depends on, to tell when they change."
  (list llm-sidecar-command llm-sidecar-settings llm-sidecar-custom-llms llm-sidecar-profiles
        llm-sidecar-completion-settings))

(defun llm-sidecar--completion-failed (err &optional unkeyed-host)
  "Report the completion error ERR: once in the echo area, always in the log.
ERR is a JSON-RPC error plist, or a message.  UNKEYED-HOST: the
request went there without a key."
  (let ((msg (if (stringp err) err
               (concat (llm-sidecar-format-error err) (llm-sidecar--no-key-hint err unkeyed-host)))))
    (llm-sidecar--completion-log "%s" (replace-regexp-in-string "\n" " " msg))
    (unless (equal llm-sidecar--error-shown-for (llm-sidecar--settings-values))
      (setq llm-sidecar--error-shown-for (copy-tree (llm-sidecar--settings-values)))
      (llm-sidecar--error "%s\n(code completion: later errors only in M-x llm-sidecar-completion-log)" msg))))

;;;; Ghost text

(defun llm-sidecar-ghost-text ()
  "The suggestion shown in this buffer, or nil."
  (and llm-sidecar--ghost (overlay-buffer llm-sidecar--ghost) llm-sidecar--ghost-text))

(defun llm-sidecar--show (text)
  "Show TEXT as ghost text at point."
  (llm-sidecar--hide)
  (let ((o (make-overlay (point) (point) nil nil t))
        (s (propertize text 'face 'llm-sidecar-ghost-text)))
    ;; the cursor stays before the ghost text
    (put-text-property 0 1 'cursor t s)
    (overlay-put o 'after-string s)
    (overlay-put o 'llm-sidecar-ghost t)
    (overlay-put o 'priority 100)
    (setq llm-sidecar--ghost o
          llm-sidecar--ghost-text text
          llm-sidecar-completion-status 'shown)
    (add-hook 'after-change-functions #'llm-sidecar--after-change nil t)
    (add-hook 'post-command-hook #'llm-sidecar--post-command nil t)))

(defun llm-sidecar--hide ()
  "Remove the ghost text of this buffer."
  (when llm-sidecar--ghost
    (delete-overlay llm-sidecar--ghost)
    (setq llm-sidecar--ghost nil
          llm-sidecar--ghost-text nil)
    (when (eq llm-sidecar-completion-status 'shown)
      (setq llm-sidecar-completion-status nil))))

(defun llm-sidecar-dismiss ()
  "Remove the suggestion and cancel the request in flight (or to come)."
  (interactive)
  (when (and (timerp llm-sidecar--idle-timer) (eq (car (timer--args llm-sidecar--idle-timer)) (current-buffer)))
    (cancel-timer llm-sidecar--idle-timer)
    (setq llm-sidecar--idle-timer nil))
  (llm-sidecar--cancel-pending)
  (llm-sidecar--hide))

(defun llm-sidecar--after-change (beg end len)
  "Keep the ghost text when the edit BEG END LEN typed its next characters.
Any other edit removes it.  Any edit cancels the request in flight:
its answer would be for text that is no longer there."
  (unless llm-sidecar--inserting
    (llm-sidecar--cancel-pending))
  (when (and llm-sidecar--ghost (not llm-sidecar--inserting))
    (let ((pos (overlay-start llm-sidecar--ghost))
          (typed (and (= len 0) (buffer-substring-no-properties beg end))))
      (if (and typed (= beg pos) (not (string-empty-p typed))
               (< (length typed) (length llm-sidecar--ghost-text))
               (string-prefix-p typed llm-sidecar--ghost-text))
          (let ((rest (substring llm-sidecar--ghost-text (length typed))))
            (save-excursion (goto-char end) (llm-sidecar--show rest)))
        (llm-sidecar--hide)))))

(defun llm-sidecar--post-command ()
  "Remove the ghost text when point left it.
After an edit, schedule an automatic request."
  (when (and llm-sidecar--ghost (not (eql (point) (overlay-start llm-sidecar--ghost))))
    (llm-sidecar--hide))
  ;; an answer for another position would not be shown
  (when (and llm-sidecar--pending (not (eql (point) (nth 3 llm-sidecar--pending))))
    (llm-sidecar--cancel-pending))
  (when (and llm-sidecar-completion-mode llm-sidecar--edited)
    (setq llm-sidecar--edited nil)
    (llm-sidecar--schedule)))

(defun llm-sidecar--note-edit (&rest _)
  "Remember that the buffer changed (for the idle request)."
  (unless llm-sidecar--inserting
    (setq llm-sidecar--edited t)))

;;;; Requests

(defun llm-sidecar--popup-p ()
  "Non-nil while a completion popup is up (completion-in-region, company, corfu)."
  (or (bound-and-true-p completion-in-region-mode)
      (bound-and-true-p company-candidates)
      (and (boundp 'corfu--frame) (frame-live-p (symbol-value 'corfu--frame))
           (frame-visible-p (symbol-value 'corfu--frame)))))

(defun llm-sidecar--inhibited-p ()
  "Non-nil when no suggestion may be requested now."
  (cl-some #'funcall llm-sidecar-completion-inhibit-predicates))

(defun llm-sidecar--schedule ()
  "Request a suggestion for this buffer once Emacs is idle.
For `llm-sidecar-completion-delay' seconds."
  (when (timerp llm-sidecar--idle-timer) (cancel-timer llm-sidecar--idle-timer))
  (let ((buf (current-buffer)))
    (setq llm-sidecar--idle-timer
          (run-with-idle-timer llm-sidecar-completion-delay nil #'llm-sidecar--idle-request buf))))

(defun llm-sidecar--idle-request (buf)
  "The idle timer's request for BUF.
Made when BUF is still the selected buffer and nothing inhibits it."
  (setq llm-sidecar--idle-timer nil)
  (when (and (buffer-live-p buf) (eq buf (window-buffer (selected-window))))
    (with-current-buffer buf
      (when (and llm-sidecar-completion-mode (not (llm-sidecar--inhibited-p)))
        (llm-sidecar--request-completion)))))

(defun llm-sidecar--cancel-pending ()
  "Cancel this buffer's request in flight, if any."
  (when llm-sidecar--pending
    (pcase-let ((`(,_ ,id ,conn ,_) llm-sidecar--pending))
      (when (and id (jsonrpc-running-p conn))
        (jsonrpc-notify conn '$/cancelRequest (list :id id))))
    (setq llm-sidecar--pending nil)
    (when (eq llm-sidecar-completion-status 'requesting)
      (setq llm-sidecar-completion-status nil))))

(defun llm-sidecar--completion-params (invoked)
  "The params of a completion request at point.
INVOKED: asked for by a command (the sidecar then skips its cache).
A buffer without a file gives its name as the path: the sidecar keeps
one request per path."
  (let* ((max llm-sidecar-completion-context-chars)
         (beg (max (point-min) (- (point) max)))
         (end (min (point-max) (+ (point) (/ max 2))))
         (params (list :prefix (buffer-substring-no-properties beg (point))
                       :suffix (buffer-substring-no-properties (point) end)
                       :language (string-remove-suffix "-mode" (symbol-name major-mode)))))
    (append params
            (list :path (or buffer-file-name (buffer-name)))
            (and invoked (list :invoked t))
            (llm-sidecar--completion-selection))))

(defun llm-sidecar--completion-selection ()
  "The request's own selection: `llm-sidecar-completion-settings' when set.
As the request's own, they come before the Completion entry of
`llm-sidecar-custom-llms'; without them the sidecar picks that entry,
else the configured completion settings."
  (let* ((s llm-sidecar-completion-settings)
         (only (lambda (key) (and (= (length s) 1) (llm-sidecar-auth--get s key)))))
    (cond
     ((null s) nil)
     ((stringp (funcall only "llm")) (list :llm (funcall only "llm")))
     ((stringp (funcall only "profile")) (list :profile (funcall only "profile")))
     (t (list :settings (llm-sidecar--resolve s "llm-sidecar-completion-settings"))))))

(defun llm-sidecar--request-completion (&optional invoked)
  "Request a suggestion at point, cancelling the one in flight.
INVOKED: asked for by a command, not by the idle timer.  Return the
request's id."
  (llm-sidecar--cancel-pending)
  (condition-case err
      (llm-sidecar--send-completion invoked)
    ;; a missing key, a sidecar that cannot start: reported once, not at every pause in typing
    (user-error (setq llm-sidecar-completion-status 'error)
                (llm-sidecar--completion-failed (error-message-string err))
                nil)))

(defun llm-sidecar--send-completion (invoked)
  "Send the completion request at point (INVOKED: by a command); return its id."
  (let* ((conn (llm-sidecar--start (lambda (msg) (user-error "%s" msg))))
         (params (llm-sidecar--completion-params invoked))
         (unkeyed (and llm-sidecar-completion-settings llm-sidecar-auth-unkeyed-host)))
    (when conn
      (llm-sidecar--sync-configuration)
      (let* ((seq (cl-incf llm-sidecar--request-seq))
             (buf (current-buffer))
             (pos (point))
             (tick (buffer-chars-modified-tick))
             (done (lambda (result err)
                     (when (buffer-live-p buf)
                       (with-current-buffer buf
                         (when (eql (car llm-sidecar--pending) seq)
                           (setq llm-sidecar--pending nil)
                           (llm-sidecar--on-completion result err pos tick unkeyed)))))))
        (setq llm-sidecar-completion-status 'requesting)
        (setq llm-sidecar--pending (list seq nil conn pos))
        (add-hook 'after-change-functions #'llm-sidecar--after-change nil t)
        (add-hook 'post-command-hook #'llm-sidecar--post-command nil t)
        (let ((id (llm-sidecar--request conn 'llm/inlineCompletion params
                                        :timeout 60
                                        :success-fn (lambda (r) (funcall done r nil))
                                        :error-fn (lambda (e) (funcall done nil e))
                                        :timeout-fn
                                        (lambda ()
                                          (when (buffer-live-p buf)
                                            (with-current-buffer buf
                                              (when (eql (car llm-sidecar--pending) seq)
                                                (llm-sidecar--cancel-pending))))
                                          (llm-sidecar--completion-failed
                                           "llm-sidecar: code completion got no answer in 60 s")))))
          (when (eql (car llm-sidecar--pending) seq)
            (setf (nth 1 llm-sidecar--pending) id))
          id)))))

(defun llm-sidecar--on-completion (result err pos tick &optional unkeyed-host)
  "Show RESULT (or report ERR) of the request made at POS.
TICK: the buffer's `buffer-chars-modified-tick' then.  UNKEYED-HOST:
the request went there without a key."
  (cond
   (err
    (setq llm-sidecar-completion-status (if (eql (plist-get err :code) -32800) nil 'error))
    (unless (eql (plist-get err :code) -32800)
      (llm-sidecar--completion-failed err unkeyed-host)))
   ((or (/= (point) pos) (/= (buffer-chars-modified-tick) tick))
    ;; the buffer moved on; a newer request follows
    (setq llm-sidecar-completion-status nil))
   (t
    (let* ((items (plist-get result :items))
           (text (and (> (length items) 0) (plist-get (elt items 0) :insertText))))
      (if (and (stringp text) (not (string-empty-p text)))
          (llm-sidecar--show text)
        (setq llm-sidecar-completion-status nil))))))

;;;; Commands

;;;###autoload
(defun llm-sidecar-complete ()
  "Request a code completion at point now; it is shown as ghost text."
  (interactive)
  (llm-sidecar--hide)
  (llm-sidecar--request-completion t))

;;;###autoload
(defun llm-sidecar-accept ()
  "Insert the suggestion shown at point, as one undo step."
  (interactive)
  (let ((text (llm-sidecar-ghost-text)))
    (if (not text)
        (when (called-interactively-p 'any) (message "llm-sidecar: no suggestion to accept"))
      (let ((pos (overlay-start llm-sidecar--ghost)))
        (llm-sidecar--hide)
        (llm-sidecar--cancel-pending)
        (goto-char pos)
        (let ((llm-sidecar--inserting t))
          (insert text))
        text))))

(defun llm-sidecar--accept-filter (cmd)
  "CMD while a suggestion is shown, else nil (the key falls through)."
  (and (llm-sidecar-ghost-text) cmd))

(defvar llm-sidecar-completion-mode-map
  (let ((map (make-sparse-keymap))
        (accept '(menu-item "" llm-sidecar-accept :filter llm-sidecar--accept-filter)))
    (define-key map (kbd "TAB") accept)
    (define-key map [tab] accept)
    map)
  "Keys of `llm-sidecar-completion-mode'.
TAB accepts the suggestion while one is shown; otherwise it does
what it did before.")

;;;###autoload
(define-minor-mode llm-sidecar-completion-mode
  "Ghost-text code completion through llm-sidecar.
When typing pauses for `llm-sidecar-completion-delay' seconds, a
suggestion is requested and shown after point.  TAB accepts it
while it is shown (\\[llm-sidecar-accept]); any other edit or
moving point removes it.  \\[llm-sidecar-complete] asks for one now.
The settings are `llm-sidecar-completion-settings', else the
Completion entry of `llm-sidecar-custom-llms'.
\\{llm-sidecar-completion-mode-map}"
  :lighter " LLM"
  :keymap llm-sidecar-completion-mode-map
  (if llm-sidecar-completion-mode
      (progn
        (add-hook 'after-change-functions #'llm-sidecar--note-edit nil t)
        (add-hook 'post-command-hook #'llm-sidecar--post-command nil t))
    (remove-hook 'after-change-functions #'llm-sidecar--note-edit t)
    (remove-hook 'post-command-hook #'llm-sidecar--post-command t)
    (llm-sidecar-dismiss)))

(provide 'llm-sidecar-completion)
;;; llm-sidecar-completion.el ends here
