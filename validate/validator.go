package validate

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
)

// Custom validator tags registered by New.
const (
	// TagChat accepts what NormalizeChat accepts.
	TagChat = "wa_chat"
	// TagParticipant accepts what NormalizeParticipant accepts.
	TagParticipant = "wa_participant"
	// TagMessageID accepts what ParseMessageID accepts.
	TagMessageID = "wa_msgid"
	// TagSession accepts what SessionName accepts.
	TagSession = "wa_session"
)

// New returns a validator with bluetick's tags ([TagChat], [TagParticipant],
// [TagMessageID], [TagSession]) registered, which names fields by their JSON names. It is
// safe for concurrent use once built; build it once and keep it.
func New() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			return ""
		case "":
			return f.Name
		}
		return name
	})
	for tag, check := range map[string]func(string) error{
		TagChat:        func(s string) error { _, err := NormalizeChat(s); return err },
		TagParticipant: func(s string) error { _, err := NormalizeParticipant(s); return err },
		TagMessageID:   func(s string) error { _, err := ParseMessageID(s); return err },
		TagSession:     SessionName,
	} {
		// RegisterValidation only fails for an empty tag or a nil function.
		_ = v.RegisterValidation(tag, func(fl validator.FieldLevel) bool {
			return fl.Field().Kind() == reflect.String && check(fl.Field().String()) == nil
		})
	}
	return v
}

// Struct validates s with v and returns nil or [Errors]: validator's
// ValidationErrors never leave this package. An error that is not about
// fields (s is not a struct) is returned as it is.
func Struct(v *validator.Validate, s any) error {
	err := v.Struct(s)
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return err
	}
	out := make(Errors, 0, len(verrs))
	for _, fe := range verrs {
		out = append(out, FieldError{Field: fieldPath(fe), Rule: fe.Tag(), Message: message(fe)})
	}
	return out
}

// fieldPath returns the field's JSON path without the top-level struct's
// name: "messageIds[2]" rather than "seenRequest.messageIds[2]".
func fieldPath(fe validator.FieldError) string {
	ns := fe.Namespace()
	if _, rest, ok := strings.Cut(ns, "."); ok {
		return rest
	}
	return fe.Field()
}

func message(fe validator.FieldError) string {
	value := fmt.Sprint(fe.Value())
	switch fe.Tag() {
	case TagChat:
		_, err := NormalizeChat(value)
		return reasonOr(err, "must be a phone number or a WhatsApp chat JID")
	case TagParticipant:
		_, err := NormalizeParticipant(value)
		return reasonOr(err, "must be a phone number or a WhatsApp user JID")
	case TagMessageID:
		_, err := ParseMessageID(value)
		return reasonOr(err, "must be a message id")
	case TagSession:
		return reasonOr(SessionName(value), "must be a session name")
	case "required":
		return "is required"
	case "oneof":
		return "must be one of: " + fe.Param()
	case "max":
		if fe.Kind() == reflect.String {
			return "must be at most " + fe.Param() + " characters"
		}
		return "must have at most " + fe.Param() + " items"
	case "min":
		if fe.Kind() == reflect.String {
			return "must be at least " + fe.Param() + " characters"
		}
		return "must have at least " + fe.Param() + " items"
	case "printascii":
		return "must be printable ASCII"
	}
	return "fails rule " + fe.Tag()
}

func reasonOr(err error, fallback string) string {
	if err == nil {
		return fallback
	}
	return reason(err)
}
