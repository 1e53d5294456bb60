package onboarding_test

import (
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/envelopecodec/envelope/examples/internal/onboarding"
)

func TestOnboardWaitsForApprovalAndWelcomes(t *testing.T) {
	t.Parallel()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(onboarding.CheckCustomer)
	c := onboarding.Customer{ID: "C-1", Name: "Ada", Email: "ada@example.com", Card: "4111 1111 1111 1234", Address: "1 Lane"}

	var before onboarding.Status
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(onboarding.QueryStatus)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&before); err != nil {
			t.Errorf("query result: %v", err)
		}
		env.SignalWorkflow(onboarding.SignalApprove, onboarding.Approval{By: "grace", Note: "ok"})
	}, time.Minute)
	env.ExecuteWorkflow(onboarding.Onboard, c)

	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if before.Stage != "awaiting-approval" || before.Customer != "Ada" {
		t.Errorf("status before the signal = %+v, want awaiting-approval for Ada", before)
	}
	var got onboarding.Result
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	want := onboarding.Result{
		CustomerID: "C-1", Welcome: "Welcome aboard, Ada!", Contact: "Ada <ada@example.com>, 1 Lane",
		MaskedCard: "**** 1234", Risk: "low", ApprovedBy: "grace", Note: "ok",
	}
	if got != want {
		t.Errorf("result = %+v, want %+v", got, want)
	}
}

func TestCheckCustomerRefusesIncompleteRecords(t *testing.T) {
	t.Parallel()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(onboarding.CheckCustomer)
	if _, err := env.ExecuteActivity(onboarding.CheckCustomer, onboarding.Customer{ID: "C-2", Name: "Ada"}); err == nil {
		t.Error("a customer without a card was accepted")
	}
}
