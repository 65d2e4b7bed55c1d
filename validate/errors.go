package validate

import (
	"strings"
)

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	// Field is the field's name as the client sent it, e.g. "chatId" or
	// "messageIds[2]".
	Field string `json:"field"`
	// Rule is the rule the value broke, e.g. "required", "wa_chat", "max".
	Rule string `json:"rule"`
	// Message explains the rule to a person.
	Message string `json:"message"`
}

// Error returns "field: message".
func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Errors is a list of field errors; it is the error [Struct] returns.
type Errors []FieldError

// Error joins the field errors with "; ".
func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// Field returns a FieldError for field built from err, an error returned by
// NormalizeChat, NormalizeParticipant or ParseMessageID: the rule is the
// given one and the message is err's reason without the sentinel's prefix.
func Field(field, rule string, err error) FieldError {
	return FieldError{Field: field, Rule: rule, Message: reason(err)}
}
