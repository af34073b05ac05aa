package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Batch sizes keep statements well under the databases' parameter limits.
const (
	idBatch     = 500 // ids per IN list
	memberBatch = 100 // rows per multi-row INSERT of group_members
)

const groupCols = `id, display_name, external_id, revision, created_at, updated_at`

func scanGroup(sc scanner) (*store.Group, error) {
	var g store.Group
	if err := sc.Scan(&g.ID, &g.DisplayName, &g.ExternalID, &g.Revision, timeCol{&g.CreatedAt},
		timeCol{&g.UpdatedAt}); err != nil {
		return nil, err
	}
	g.Members = []store.Member{}
	return &g, nil
}

// batches calls fn with consecutive slices of at most n elements of all.
func batches[T any](all []T, n int, fn func(part []T, offset int) error) error {
	for i := 0; i < len(all); i += n {
		if err := fn(all[i:min(i+n, len(all))], i); err != nil {
			return err
		}
	}
	return nil
}

// attachMembers loads the direct members of groups, in stored order.
func attachMembers(ctx context.Context, c conn, groups []*store.Group) error {
	byID := make(map[string]*store.Group, len(groups))
	ids := make([]any, 0, len(groups))
	for _, g := range groups {
		byID[g.ID] = g
		ids = append(ids, g.ID)
	}
	return batches(ids, idBatch, func(part []any, _ int) error {
		rows, err := c.query(ctx, `SELECT group_id, user_id, member_group_id FROM group_members
			WHERE group_id IN (`+marks(len(part))+`) ORDER BY group_id, position`, part...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				gid      string
				uid, mid sql.NullString
			)
			if err := rows.Scan(&gid, &uid, &mid); err != nil {
				return err
			}
			m := store.Member{ID: mid.String, Type: store.MemberGroup}
			if uid.Valid {
				m = store.Member{ID: uid.String, Type: store.MemberUser}
			}
			if g := byID[gid]; g != nil {
				g.Members = append(g.Members, m)
			}
		}
		return rows.Err()
	})
}

// resolveMembers checks that every member exists, fills in empty types and
// drops duplicates. A group that names itself is a cycle.
func resolveMembers(ctx context.Context, c conn, groupID string, in []store.Member) ([]store.Member, error) {
	ids := make([]any, 0, len(in))
	for _, m := range in {
		if m.ID == "" {
			return nil, fmt.Errorf("%w: member without id", store.ErrInvalid)
		}
		ids = append(ids, m.ID)
	}
	users, groups := map[string]bool{}, map[string]bool{}
	err := batches(ids, idBatch, func(part []any, _ int) error {
		in := marks(len(part))
		rows, err := c.query(ctx, `SELECT id, 1 FROM users WHERE id IN (`+in+`)
			UNION ALL SELECT id, 0 FROM groups WHERE id IN (`+in+`)`, append(part[:len(part):len(part)], part...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id     string
				isUser bool
			)
			if err := rows.Scan(&id, &isUser); err != nil {
				return err
			}
			if isUser {
				users[id] = true
			} else {
				groups[id] = true
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	out := make([]store.Member, 0, len(in))
	seen := make(map[store.Member]bool, len(in))
	for _, m := range in {
		isUser, isGroup := users[m.ID], groups[m.ID]
		switch {
		case m.Type == store.MemberUser && isUser, m.Type == store.MemberGroup && isGroup:
		case m.Type == "" && isUser:
			m.Type = store.MemberUser
		case m.Type == "" && isGroup:
			m.Type = store.MemberGroup
		case m.Type != store.MemberUser && m.Type != store.MemberGroup && m.Type != "":
			return nil, fmt.Errorf("%w: member %q has unknown type %q", store.ErrInvalid, m.ID, m.Type)
		default:
			return nil, fmt.Errorf("%w: member %q does not exist", store.ErrInvalid, m.ID)
		}
		if m.Type == store.MemberGroup && m.ID == groupID {
			return nil, fmt.Errorf("%w: group cannot be a member of itself", store.ErrInvalid)
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// setMembers resolves in, stores the result as the direct members of
// groupID and rejects it if it makes groupID reachable from itself. The
// caller runs it under writeMembership.
func setMembers(ctx context.Context, c conn, groupID string, in []store.Member) ([]store.Member, error) {
	ms, err := resolveMembers(ctx, c, groupID, in)
	if err != nil {
		return nil, err
	}
	if _, err := c.exec(ctx, `DELETE FROM group_members WHERE group_id = ?`, groupID); err != nil {
		return nil, err
	}
	err = batches(ms, memberBatch, func(part []store.Member, offset int) error {
		args := make([]any, 0, 4*len(part))
		for i, m := range part {
			var uid, gid any
			if m.Type == store.MemberUser {
				uid = m.ID
			} else {
				gid = m.ID
			}
			args = append(args, groupID, offset+i, uid, gid)
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(part)), ", ")
		_, err := c.exec(ctx, `INSERT INTO group_members (group_id, position, user_id, member_group_id)
			VALUES `+values, args...)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := checkNoCycle(ctx, c, groupID); err != nil {
		return nil, err
	}
	return ms, nil
}

// checkNoCycle fails with ErrInvalid if groupID is reachable from itself
// through nested group members.
func checkNoCycle(ctx context.Context, c conn, groupID string) error {
	var cycle bool
	if err := c.row(ctx, `WITH RECURSIVE reach(id) AS (
			SELECT member_group_id FROM group_members WHERE group_id = ? AND member_group_id IS NOT NULL
			UNION
			SELECT gm.member_group_id FROM group_members gm JOIN reach r ON gm.group_id = r.id
			WHERE gm.member_group_id IS NOT NULL
		)
		SELECT EXISTS (SELECT 1 FROM reach WHERE id = ?)`, groupID, groupID).Scan(&cycle); err != nil {
		return err
	}
	if cycle {
		return fmt.Errorf("%w: membership would create a nesting cycle", store.ErrInvalid)
	}
	return nil
}

func prepGroup(g *store.Group) error {
	if g.DisplayName == "" {
		return fmt.Errorf("%w: displayName is required", store.ErrInvalid)
	}
	return nil
}

// CreateGroup inserts g with its members and fills ID (if empty), Revision,
// CreatedAt and UpdatedAt. Members must exist (ErrInvalid); a taken ID or
// displayName yields ErrAlreadyExists.
func (s *Store) CreateGroup(ctx context.Context, g *store.Group) error {
	err := prepGroup(g)
	if err == nil {
		id, now := newID(g.ID), s.stamp()
		var ms []store.Member
		err = s.writeMembership(ctx, func(c conn) error {
			if _, err := c.exec(ctx, `INSERT INTO groups (`+groupCols+`, display_name_key) VALUES (`+marks(7)+`)`,
				id, g.DisplayName, g.ExternalID, 1, s.ts(now), s.ts(now), store.FoldName(g.DisplayName)); err != nil {
				return s.mapErr(err)
			}
			var err error
			ms, err = setMembers(ctx, c, id, g.Members)
			return err
		})
		if err == nil {
			g.ID, g.Members, g.Revision, g.CreatedAt, g.UpdatedAt = id, ms, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create group %q: %w", g.DisplayName, err)
}

// GetGroup returns the group with id and its direct members, or ErrNotFound.
func (s *Store) GetGroup(ctx context.Context, id string) (*store.Group, error) {
	g, err := s.getGroup(ctx, `id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("store: get group %q: %w", id, err)
	}
	return g, nil
}

// GetGroupByName returns the group whose displayName matches
// case-insensitively, or ErrNotFound.
func (s *Store) GetGroupByName(ctx context.Context, displayName string) (*store.Group, error) {
	g, err := s.getGroup(ctx, `display_name_key = ?`, store.FoldName(displayName))
	if err != nil {
		return nil, fmt.Errorf("store: get group by name %q: %w", displayName, err)
	}
	return g, nil
}

func (s *Store) getGroup(ctx context.Context, where string, arg any) (*store.Group, error) {
	var g *store.Group
	err := s.read(ctx, func(c conn) error {
		var err error
		if g, err = getOne(ctx, c, scanGroup, `SELECT `+groupCols+` FROM groups WHERE `+where, arg); err != nil {
			return err
		}
		return attachMembers(ctx, c, []*store.Group{g})
	})
	return g, err
}

// ListGroups returns every group with its members, ordered by CreatedAt then ID.
func (s *Store) ListGroups(ctx context.Context) ([]*store.Group, error) {
	groups, err := s.queryGroups(ctx, func(context.Context, conn) error { return nil },
		`SELECT `+groupCols+` FROM groups ORDER BY created_at, `+s.bytewise("id"))
	if err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	return groups, nil
}

// GroupsByExternalID implements store.ExternalIDStore.
func (s *Store) GroupsByExternalID(ctx context.Context, id string) ([]*store.Group, error) {
	if id == "" {
		return []*store.Group{}, nil
	}
	groups, err := s.queryGroups(ctx, func(context.Context, conn) error { return nil },
		`SELECT `+groupCols+` FROM groups WHERE external_id = ? ORDER BY created_at, `+s.bytewise("id"), id)
	if err != nil {
		return nil, fmt.Errorf("store: groups by external id: %w", err)
	}
	return groups, nil
}

// GroupsOfUser returns every group the user belongs to directly or through
// nesting, each once, ordered by DisplayName (bytewise) then ID. It never
// loads the groups' members, so its cost does not grow with their sizes:
// each group's Members holds the user alone when the membership is direct,
// and is empty when it comes through nesting.
func (s *Store) GroupsOfUser(ctx context.Context, userID string) ([]*store.Group, error) {
	var groups []*store.Group
	err := s.read(ctx, func(c conn) error {
		ok, err := exists(ctx, c, `SELECT 1 FROM users WHERE id = ?`, userID)
		if err == nil && !ok {
			err = store.ErrNotFound
		}
		if err != nil {
			return err
		}
		groups, err = list(ctx, c, scanGroupOfUser(userID), `WITH RECURSIVE anc(id) AS (
				SELECT group_id FROM group_members WHERE user_id = ?
				UNION
				SELECT gm.group_id FROM group_members gm JOIN anc a ON gm.member_group_id = a.id
			)
			SELECT `+groupCols+`, EXISTS (SELECT 1 FROM group_members d WHERE d.group_id = groups.id
				AND d.user_id = ?) FROM groups WHERE id IN (SELECT id FROM anc)
			ORDER BY `+s.bytewise("display_name")+`, `+s.bytewise("id"), userID, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: groups of user %q: %w", userID, err)
	}
	return groups, nil
}

// scanGroupOfUser scans a group row followed by a flag saying whether
// userID is a direct member, which becomes the group's only Member.
func scanGroupOfUser(userID string) func(scanner) (*store.Group, error) {
	return func(sc scanner) (*store.Group, error) {
		var (
			g      store.Group
			direct bool
		)
		if err := sc.Scan(&g.ID, &g.DisplayName, &g.ExternalID, &g.Revision, timeCol{&g.CreatedAt},
			timeCol{&g.UpdatedAt}, &direct); err != nil {
			return nil, err
		}
		g.Members = []store.Member{}
		if direct {
			g.Members = append(g.Members, store.Member{ID: userID, Type: store.MemberUser})
		}
		return &g, nil
	}
}

// queryGroups runs check, then query, and loads the members of the groups
// it selects, all in one read transaction.
func (s *Store) queryGroups(ctx context.Context, check func(context.Context, conn) error, query string,
	args ...any) ([]*store.Group, error) {
	var groups []*store.Group
	err := s.read(ctx, func(c conn) error {
		if err := check(ctx, c); err != nil {
			return err
		}
		var err error
		if groups, err = list(ctx, c, scanGroup, query, args...); err != nil {
			return err
		}
		return attachMembers(ctx, c, groups)
	})
	return groups, err
}

// UpdateGroup replaces the name, external id and whole member list of g.ID
// if g.Revision is current, then sets g.Revision, g.UpdatedAt, g.CreatedAt
// and g.Members to the stored values. A stale revision yields ErrConflict;
// a missing member or a nesting cycle yields ErrInvalid; in every error case
// nothing changes.
func (s *Store) UpdateGroup(ctx context.Context, g *store.Group) error {
	err := prepGroup(g)
	if err == nil {
		now := s.stamp()
		var (
			rev     int64
			created time.Time
			ms      []store.Member
		)
		err = s.writeMembership(ctx, func(c conn) error {
			var err error
			rev, created, err = s.updateRow(ctx, c, "groups", `display_name = ?, display_name_key = ?,
				external_id = ?`, now, g.ID, g.Revision, g.DisplayName, store.FoldName(g.DisplayName), g.ExternalID)
			if err != nil {
				return s.mapErr(err)
			}
			ms, err = setMembers(ctx, c, g.ID, g.Members)
			return err
		})
		if err == nil {
			g.Members, g.Revision, g.CreatedAt, g.UpdatedAt = ms, rev, created, now
			return nil
		}
	}
	return fmt.Errorf("store: update group %q: %w", g.ID, err)
}

// DeleteGroup removes the group and every membership naming it, and bumps
// the revision of the groups it was a member of.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	if err := s.deleteMember(ctx, "groups", "member_group_id", id); err != nil {
		return fmt.Errorf("store: delete group %q: %w", id, err)
	}
	return nil
}

// memberColumn is the group_members column that holds members of m's type.
func memberColumn(m store.Member) string {
	if m.Type == store.MemberGroup {
		return "member_group_id"
	}
	return "user_id"
}

// PatchGroupMembers implements store.GroupMemberStore: it touches only the
// rows of the members named, through the indexes on (user_id, group_id)
// and (member_group_id, group_id), never the whole member list.
func (s *Store) PatchGroupMembers(ctx context.Context, id string, revision int64, add, remove []store.Member) (*store.GroupPatch, error) {
	now := s.stamp()
	out := &store.GroupPatch{Added: []store.Member{}, Removed: []store.Member{}}
	err := s.writeMembership(ctx, func(c conn) error {
		g, err := getOne(ctx, c, scanGroup, `SELECT `+groupCols+` FROM groups WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if revision != 0 && g.Revision != revision {
			return store.ErrConflict
		}
		if out.Added, err = addMembers(ctx, c, id, add); err != nil {
			return err
		}
		if out.Removed, err = removeMembers(ctx, c, id, remove); err != nil {
			return err
		}
		if len(out.Added)+len(out.Removed) > 0 {
			if g.Revision, g.CreatedAt, err = s.updateRow(ctx, c, "groups", `display_name = display_name`, now,
				id, g.Revision); err != nil {
				return err
			}
			g.UpdatedAt = now
		}
		out.Group = g
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: patch members of group %q: %w", id, err)
	}
	return out, nil
}

// addMembers appends the members of add that groupID does not hold yet
// and returns them; a group member is checked for nesting cycles.
func addMembers(ctx context.Context, c conn, groupID string, add []store.Member) ([]store.Member, error) {
	ms, err := resolveMembers(ctx, c, groupID, add)
	if err != nil {
		return nil, err
	}
	var next int64
	if err := c.row(ctx, `SELECT COALESCE(MAX(position), -1) + 1 FROM group_members WHERE group_id = ?`,
		groupID).Scan(&next); err != nil {
		return nil, err
	}
	added, nested := []store.Member{}, false
	for _, m := range ms {
		col := memberColumn(m)
		held, err := exists(ctx, c, `SELECT 1 FROM group_members WHERE `+col+` = ? AND group_id = ?`, m.ID, groupID)
		if err != nil {
			return nil, err
		}
		if held {
			continue
		}
		if _, err := c.exec(ctx, `INSERT INTO group_members (group_id, position, `+col+`) VALUES (?, ?, ?)`,
			groupID, next, m.ID); err != nil {
			return nil, err
		}
		next++
		added = append(added, m)
		nested = nested || m.Type == store.MemberGroup
	}
	if nested {
		if err := checkNoCycle(ctx, c, groupID); err != nil {
			return nil, err
		}
	}
	return added, nil
}

// removeMembers deletes the members of remove that groupID holds and
// returns them. A member with an empty Type matches a user or a group.
func removeMembers(ctx context.Context, c conn, groupID string, remove []store.Member) ([]store.Member, error) {
	removed := []store.Member{}
	for _, m := range remove {
		types := []store.MemberType{m.Type}
		switch m.Type {
		case store.MemberUser, store.MemberGroup:
		case "":
			types = []store.MemberType{store.MemberUser, store.MemberGroup}
		default:
			return nil, fmt.Errorf("%w: member %q has unknown type %q", store.ErrInvalid, m.ID, m.Type)
		}
		for _, t := range types {
			tm := store.Member{ID: m.ID, Type: t}
			n, err := c.affected(ctx, `DELETE FROM group_members WHERE `+memberColumn(tm)+` = ? AND group_id = ?`,
				m.ID, groupID)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				removed = append(removed, tm)
			}
		}
	}
	return removed, nil
}
