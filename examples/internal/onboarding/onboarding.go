// Package onboarding is the example workflow: it onboards a customer whose
// record (name, email, card number, address) must never reach the Temporal
// server in plaintext. The worker and starter in examples/ run it with the
// envelope codec, so every input, result, signal, query answer and memo is
// sealed before it leaves the process.
package onboarding

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"
)

// DefaultTaskQueue is the task queue the example worker polls.
const DefaultTaskQueue = "envelope-onboarding"

// Names of the workflow's signal and query.
const (
	// SignalApprove carries an [Approval] and lets the workflow finish.
	SignalApprove = "approve"
	// QueryStatus answers the workflow's current [Status].
	QueryStatus = "status"
)

// Status is where an onboarding stands.
type Status struct {
	Stage    string // "checking", "awaiting-approval" or "approved"
	Customer string // the customer's name
}

// Customer is the sensitive record the workflow handles.
type Customer struct {
	ID      string
	Name    string
	Email   string
	Card    string // payment card number
	Address string
}

// Assessment is what the CheckCustomer activity finds out.
type Assessment struct {
	CustomerID string
	Risk       string
	MaskedCard string
	Contact    string // where the welcome pack goes
}

// Approval is the payload of the approve signal.
type Approval struct {
	By   string
	Note string
}

// Result is the workflow's result.
type Result struct {
	CustomerID string
	Welcome    string
	Contact    string
	MaskedCard string
	Risk       string
	ApprovedBy string
	Note       string
}

// Onboard checks the customer with an activity, waits for an approval
// signal and returns a welcome. The query QueryStatus reports its progress.
func Onboard(ctx workflow.Context, c Customer) (Result, error) {
	status := Status{Stage: "checking", Customer: c.Name}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return status, nil }); err != nil {
		return Result{}, err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	var a Assessment
	if err := workflow.ExecuteActivity(actx, CheckCustomer, c).Get(ctx, &a); err != nil {
		return Result{}, err
	}
	status.Stage = "awaiting-approval"
	var ap Approval
	workflow.GetSignalChannel(ctx, SignalApprove).Receive(ctx, &ap)
	status.Stage = "approved"
	return Result{
		CustomerID: c.ID,
		Welcome:    fmt.Sprintf("Welcome aboard, %s!", c.Name),
		Contact:    a.Contact,
		MaskedCard: a.MaskedCard,
		Risk:       a.Risk,
		ApprovedBy: ap.By,
		Note:       ap.Note,
	}, nil
}

// CheckCustomer assesses a customer. It stands for a call to a
// fraud-checking service that needs the full record.
func CheckCustomer(ctx context.Context, c Customer) (Assessment, error) {
	activity.GetLogger(ctx).Info("checking customer", "CustomerID", c.ID) // IDs only: never log the record
	if c.Name == "" || c.Card == "" {
		return Assessment{}, fmt.Errorf("customer %s: name and card are required", c.ID)
	}
	risk := "low"
	if !strings.Contains(c.Email, "@") {
		risk = "high"
	}
	return Assessment{
		CustomerID: c.ID,
		Risk:       risk,
		MaskedCard: maskCard(c.Card),
		Contact:    fmt.Sprintf("%s <%s>, %s", c.Name, c.Email, c.Address),
	}, nil
}

// maskCard keeps the last four digits of a card number.
func maskCard(card string) string {
	digits := make([]rune, 0, len(card))
	for _, r := range card {
		if r >= '0' && r <= '9' {
			digits = append(digits, r)
		}
	}
	if len(digits) <= 4 {
		return strings.Repeat("*", len(digits))
	}
	return "**** " + string(digits[len(digits)-4:])
}
