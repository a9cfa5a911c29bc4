package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/skyfs/skyfs/ufs"
)

// sdkError keeps an SDK error for errors.As while giving it a short one-line
// message.
type sdkError struct {
	msg string
	err error
}

func (e *sdkError) Error() string { return e.msg }
func (e *sdkError) Unwrap() error { return e.err }

// mapErr turns an SDK error into a short message joined to the matching ufs
// sentinel (ErrNotExist, ErrPermission, ErrUnavailable, ErrInvalid). Errors that
// are already ufs errors pass unchanged.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var (
		mapped *sdkError
		kind   *ufs.KindError
		uerr   *ufs.Error
	)
	if errors.As(err, &mapped) || errors.As(err, &kind) || errors.As(err, &uerr) {
		return err // mapped already
	}
	var (
		apiErr   smithy.APIError
		respErr  *smithyhttp.ResponseError
		attempts *retry.MaxAttemptsError
		opErr    *net.OpError
	)
	isAPI := errors.As(err, &apiErr)
	// A response error with status 0 is a request that got no response.
	isResp := errors.As(err, &respErr) && respErr.HTTPStatusCode() != 0
	var opName string
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		opName = oe.OperationName + ": "
	}
	tries := ""
	if errors.As(err, &attempts) && attempts.Attempt > 1 {
		tries = fmt.Sprintf("after %d attempts", attempts.Attempt)
	}

	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		if oe == nil {
			return err
		}
		return &sdkError{msg: opName + contextCause(err), err: err}
	case isAPI || isResp:
		status := 0
		if isResp {
			status = respErr.HTTPStatusCode()
		}
		code, text := "", ""
		if isAPI {
			code, text = apiErr.ErrorCode(), apiErr.ErrorMessage()
		}
		msg := opName + code
		if text != "" && text != code {
			msg += ": " + text
		}
		var notes []string
		if status != 0 {
			notes = append(notes, fmt.Sprintf("HTTP %d", status))
		}
		if tries != "" {
			notes = append(notes, tries)
		}
		if len(notes) > 0 {
			msg += " (" + strings.Join(notes, ", ") + ")"
		}
		e := &sdkError{msg: strings.TrimSpace(msg), err: err}
		if kind := classify(code, status); kind != nil {
			return &ufs.KindError{Kind: kind, Err: e}
		}
		return e
	case errors.As(err, &opErr) || oe != nil:
		if !errors.As(err, &opErr) {
			opErr = nil
		}
		// No HTTP response: the endpoint could not be reached.
		cause := err
		var sendErr *smithyhttp.RequestSendError
		var urlErr *url.Error
		switch {
		case opErr != nil:
			cause = opErr
		case errors.As(err, &urlErr):
			cause = urlErr.Err
		case errors.As(err, &sendErr):
			cause = sendErr.Err
		}
		msg := opName + "cannot reach the endpoint: " + cause.Error()
		if tries != "" {
			msg += " (" + tries + ")"
		}
		e := &sdkError{msg: msg, err: err}
		return &ufs.KindError{Kind: ufs.ErrUnavailable, Err: e}
	}
	return err
}

func contextCause(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded.Error()
	}
	return context.Canceled.Error()
}

// classify maps an S3 error code and HTTP status to a ufs sentinel, or nil.
func classify(code string, status int) error {
	switch code {
	case "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchUpload":
		return ufs.ErrNotExist
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
		"InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem":
		return ufs.ErrPermission
	case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized":
		return ufs.ErrUnavailable
	case "InvalidRange", "InvalidArgument", "InvalidRequest", "EntityTooLarge", "EntityTooSmall", "KeyTooLongError":
		return ufs.ErrInvalid
	}
	switch {
	case status == 404:
		return ufs.ErrNotExist
	case status == 401 || status == 403:
		return ufs.ErrPermission
	case status == 416:
		return ufs.ErrInvalid
	case status >= 500:
		return ufs.ErrUnavailable
	}
	return nil
}

// isNotFound reports whether err is an S3 not-found.
func isNotFound(err error) bool {
	return errors.Is(mapErr(err), ufs.ErrNotExist)
}

// isInvalidRange reports whether err is S3's answer to a range past the end.
func isInvalidRange(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		return true
	}
	var respErr *smithyhttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == 416
}

// isPreconditionFailed reports whether err is S3's answer to a failed If-Match.
func isPreconditionFailed(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var respErr *smithyhttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == 412
}
