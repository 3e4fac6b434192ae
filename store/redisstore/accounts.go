package redisstore

import (
	"context"
	"errors"

	"github.com/latchkeyhq/latchkey/store"
)

// Skeleton of the issue-16 contract: replaced by the implementation.

var errTODO = errors.New("redisstore: not implemented yet")

// GetUserByEmail is not implemented yet.
func (st *Store) GetUserByEmail(ctx context.Context, tenant, email string) (store.User, error) {
	return store.User{}, errTODO
}

// CreateUser is not implemented yet.
func (st *Store) CreateUser(ctx context.Context, u store.User) error { return errTODO }

// PutToken is not implemented yet.
func (st *Store) PutToken(ctx context.Context, t store.Token) error { return errTODO }

// TakeToken is not implemented yet.
func (st *Store) TakeToken(ctx context.Context, tenant, id string) (store.Token, error) {
	return store.Token{}, errTODO
}

// DeleteTokens is not implemented yet.
func (st *Store) DeleteTokens(ctx context.Context, tenant, user string) error { return errTODO }
