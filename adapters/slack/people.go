package slack

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/slack-go/slack"

	"github.com/apacops/opsbot/users"
)

// People. A Slack user is an opsbot user through a Slack identity (team,
// user id); their display name and time zone come from users.info, so that
// "usage" days are their days. The link and the profile are cached, so an
// event from someone seen recently costs no database or Web API call before
// it is acked.

// profileTimeout bounds the users.info call made on first contact, which
// happens before a delivery is acked.
const profileTimeout = time.Second

// maxProfiles bounds the cache; retryProfile is how soon a person whose
// users.info failed is read again.
const (
	maxProfiles  = 10000
	retryProfile = time.Minute
)

type profileEntry struct {
	id    uuid.UUID
	until time.Time
}

// profiles caches who a Slack user is, with a TTL and a bound.
type profiles struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]profileEntry
}

func newProfiles(ttl time.Duration) *profiles {
	return &profiles{ttl: ttl, m: map[string]profileEntry{}}
}

func (p *profiles) get(key string) (uuid.UUID, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[key]
	if !ok || time.Now().After(e.until) {
		return uuid.Nil, false
	}
	return e.id, true
}

func (p *profiles) put(key string, id uuid.UUID, ttl time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= maxProfiles {
		now := time.Now()
		for k, e := range p.m {
			if now.After(e.until) {
				delete(p.m, k)
			}
		}
		for k := range p.m { // still full: forget an arbitrary eighth
			if len(p.m) < maxProfiles*7/8 {
				break
			}
			delete(p.m, k)
		}
	}
	p.m[key] = profileEntry{id: id, until: time.Now().Add(ttl)}
}

// person returns the id of the opsbot user behind a Slack user.
func (a *App) person(ctx context.Context, team, user string) (uuid.UUID, error) {
	if id, ok := a.people.get(team + "/" + user); ok {
		return id, nil
	}
	u, err := a.resolve(ctx, team, user)
	if err != nil {
		return uuid.Nil, err
	}
	return u.ID, nil
}

// caller returns the opsbot user behind a Slack user, read fresh (a role
// may have changed) when the link is cached.
func (a *App) caller(ctx context.Context, team, user string) (users.User, error) {
	if id, ok := a.people.get(team + "/" + user); ok {
		return a.users.Get(ctx, id)
	}
	return a.resolve(ctx, team, user)
}

// resolve finds or creates the user of a Slack identity and brings their
// name and time zone up to date from users.info. When users.info fails the
// person is still answered, in the default zone, and read again soon.
func (a *App) resolve(ctx context.Context, team, user string) (users.User, error) {
	key := team + "/" + user
	info, ierr := a.userInfo(ctx, user)
	id := users.Identity{Platform: Platform, Tenant: team, ExternalID: user}
	if ierr == nil {
		id.DisplayName = displayName(info)
	}
	u, err := a.users.ResolveIdentity(ctx, id)
	if err != nil {
		return users.User{}, err
	}
	if ierr != nil {
		a.log.WarnContext(ctx, "users.info failed; using the default time zone for now", "slack_user", user, "error", ierr)
		a.people.put(key, u.ID, retryProfile)
		return u, nil
	}
	if info.TZ != "" && info.TZ != u.TimeZone {
		switch err := a.users.SetTimeZone(ctx, u.ID, info.TZ); {
		case errors.Is(err, users.ErrInvalid):
			a.log.WarnContext(ctx, "slack user's time zone is not an IANA zone here", "slack_user", user, "tz", info.TZ)
		case err != nil:
			return users.User{}, err
		default:
			u.TimeZone = info.TZ
		}
	}
	if name := displayName(info); name != "" && name != u.DisplayName {
		switch err := a.users.SetDisplayName(ctx, u.ID, name); {
		case errors.Is(err, users.ErrInvalid):
			a.log.WarnContext(ctx, "slack user's name does not fit", "slack_user", user)
		case err != nil:
			return users.User{}, err
		default:
			u.DisplayName = name
		}
	}
	a.people.put(key, u.ID, a.cfg.ProfileTTL)
	return u, nil
}

func (a *App) userInfo(ctx context.Context, user string) (*slack.User, error) {
	ctx, cancel := context.WithTimeout(ctx, profileTimeout)
	defer cancel()
	var info *slack.User
	err := call(ctx, methodUsersInfo, func(ctx context.Context) (err error) {
		info, err = a.api.GetUserInfoContext(ctx, user)
		return err
	})
	return info, err
}

// displayName is what Slack shows for a person.
func displayName(u *slack.User) string {
	switch {
	case u.Profile.DisplayName != "":
		return u.Profile.DisplayName
	case u.RealName != "":
		return u.RealName
	}
	return u.Name
}
