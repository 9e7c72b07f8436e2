package ec2

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/kscloud/kscloud/internal/cloud"
)

// notFoundCodes are the EC2 (and Eucalyptus) error codes that mean the
// named resource does not exist. A malformed ID cannot name an existing
// resource either, so the *.Malformed codes count as not found too.
var notFoundCodes = map[string]bool{
	"InvalidInstanceID.NotFound":  true,
	"InvalidInstanceID.Malformed": true,
	"InvalidVolume.NotFound":      true,
	"InvalidVolumeID.Malformed":   true,
	"InvalidSnapshot.NotFound":    true,
	"InvalidSnapshotID.Malformed": true,
	"InvalidAMIID.NotFound":       true,
	"InvalidAMIID.Malformed":      true,
	"InvalidAMIID.Unavailable":    true, // deregistered, still remembered
	"InvalidAttachment.NotFound":  true,
	"InvalidID":                   true, // CreateTags on an unknown resource
}

// incorrectStateCodes mean the resource exists but is in a state where
// the operation is not possible.
var incorrectStateCodes = map[string]bool{
	"IncorrectState":         true,
	"IncorrectInstanceState": true,
	"VolumeInUse":            true,
	"InvalidSnapshot.InUse":  true, // a registered image still uses it
	"InvalidVolume.InUse":    true,
	"InvalidState":           true,
}

// APIError is an error the EC2 API returned, reduced to its code and one
// line of message. It wraps cloud.ErrNotFound or cloud.ErrIncorrectState
// when the code means that.
type APIError struct {
	Code    string
	Message string
	kind    error
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns cloud.ErrNotFound, cloud.ErrIncorrectState or nil.
func (e *APIError) Unwrap() error { return e.kind }

// ErrorCode, ErrorMessage and ErrorFault make an APIError a smithy.APIError.
func (e *APIError) ErrorCode() string { return e.Code }

// ErrorMessage is the service's message.
func (e *APIError) ErrorMessage() string { return e.Message }

// ErrorFault is unknown: EC2 Query errors do not say.
func (e *APIError) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }

// classify turns an SDK error into a short one-line error: an *APIError
// for errors the service returned (wrapping the cloud sentinel the code
// means), else the SDK's error text without its "operation error" prefix.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e := &APIError{Code: ae.ErrorCode(), Message: oneLine(ae.ErrorMessage())}
		switch {
		case notFoundCodes[e.Code]:
			e.kind = cloud.ErrNotFound
		case incorrectStateCodes[e.Code]:
			e.kind = cloud.ErrIncorrectState
		}
		return e
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return &shortError{msg: oneLine(oe.Err.Error()), err: oe.Err}
	}
	return err
}

// shortError keeps the SDK's underlying error for errors.Is/As while
// printing it without the "operation error EC2: X," preamble.
type shortError struct {
	msg string
	err error
}

func (e *shortError) Error() string { return e.msg }
func (e *shortError) Unwrap() error { return e.err }

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", " ")
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

// objErr builds the project's error shape: `volume "vol-1": delete: …`.
func objErr(kind, id, op string, err error) error {
	return fmt.Errorf("%s %q: %s: %w", kind, id, op, classify(err))
}

// notFound is the error for a describe call that answered with no object
// (Eucalyptus 3.x answers some unknown IDs with an empty set, not an error).
func notFound(kind, id, op string) error {
	return fmt.Errorf("%s %q: %s: %w", kind, id, op, cloud.ErrNotFound)
}
