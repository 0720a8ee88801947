// Package notify holds the senders that Tether's alert action groups and
// event subscriptions share: a mail through an SMTP server (SendMail,
// CheckMail, Message) and a local program run with a payload on its
// standard input (Run). Each caller decides what to send and when to
// retry; this package does one attempt and says what went wrong in a way
// the caller can classify (MailFinal, *CommandError).
//
// It imports only the standard library, so domain packages (internal/alert)
// and delivery adapters (internal/events/delivery) can both use it.
package notify
